"""How many workers ``serve`` starts when not told, and the garbage collector in each of them."""

from __future__ import annotations

import ast
import gc
import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from updater_stats import _serving
from updater_stats._cores import cgroup_cpu_limit
from updater_stats._serving import (
    GC_THRESHOLDS,
    WorkerCount,
    create_dashboard_worker_app,
    create_worker_app,
    default_workers,
    usable_core_count,
    watch_the_supervisor,
)
from updater_stats.asgi import create_app_from_env
from updater_stats.dashboard import DASHBOARD_ENV_VAR, TOKEN_ENV_VAR

from .helpers import alive, child_processes, command_line
from .live_server import HOST, Server

SQLITE = "one per core, at most 2 for SQLite"
SERVER = "one per core, at most 4 for a database server"
IN_MEMORY = "in-memory storage is not shared between processes"
CHDB = "the in-process ClickHouse engine serves one process"


@pytest.mark.parametrize(
    ("storage", "cores", "expected"),
    [
        # One file takes one write at a time: a second worker overlaps parsing with the other's
        # commit, a third would only queue for the lock.
        ("sqlite:///stats.sqlite3", 1, WorkerCount(1, SQLITE)),
        ("sqlite:///stats.sqlite3", 2, WorkerCount(2, SQLITE)),
        ("sqlite:////var/lib/stats.sqlite3", 8, WorkerCount(2, SQLITE)),
        ("SQLite:///Stats.sqlite3?x=1", 8, WorkerCount(2, SQLITE)),
        ("", 8, WorkerCount(2, SQLITE)),  # the default storage: a file
        # In memory, each process would hold a store of its own.
        ("sqlite://:memory:", 8, WorkerCount(1, IN_MEMORY)),
        ("sqlite://", 8, WorkerCount(1, IN_MEMORY)),
        ("sqlite:///:memory:", 8, WorkerCount(1, IN_MEMORY)),
        ("memory://", 8, WorkerCount(1, IN_MEMORY)),
        ("chdb:///clickhouse-data", 8, WorkerCount(1, CHDB)),
        ("chdb://", 2, WorkerCount(1, CHDB)),
        # A database server takes several writers at once.
        ("postgresql://u:p@db:5432/stats", 1, WorkerCount(1, SERVER)),
        ("postgresql://u:p@db:5432/stats", 2, WorkerCount(2, SERVER)),
        ("postgres://db/stats", 8, WorkerCount(4, SERVER)),
        ("clickhouse://db:8123/stats", 8, WorkerCount(4, SERVER)),
        ("clickhouses://db:8443/stats", 3, WorkerCount(3, SERVER)),
        # An installed package's backend may keep state in its process (the docs' example
        # keeps its keys in memory): one, unless --workers says otherwise.
        (
            "jsonl:///var/lib/events.jsonl",
            8,
            WorkerCount(
                1,
                "jsonl:// is an installed package's backend: --workers N if processes can share it",
            ),
        ),
    ],
)
def test_the_default_follows_the_cores_and_what_the_storage_can_share(
    storage: str, cores: int, expected: WorkerCount
):
    assert default_workers(storage, usable_cores=cores) == expected


@pytest.fixture
def no_quota(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's control groups set no CPU quota (CI may run in a container that does)."""
    monkeypatch.setattr(_serving, "cgroup_cpu_limit", lambda: None)


@pytest.mark.parametrize(("affinity", "workers"), [({0}, 1), ({0, 1}, 2), (set(range(8)), 2)])
@pytest.mark.usefixtures("no_quota")
def test_the_cores_are_those_the_process_may_run_on(
    monkeypatch: pytest.MonkeyPatch, affinity: set[int], workers: int
):
    # `taskset -c 0 updater-stats serve` on an 8-core machine: one core, one worker.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: affinity, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)

    assert usable_core_count() == len(affinity)
    assert default_workers("sqlite:///stats.sqlite3").count == workers


@pytest.mark.parametrize(("cpu_count", "cores"), [(8, 8), (None, 1)])
@pytest.mark.usefixtures("no_quota")
def test_without_an_affinity_the_machine_s_cores_count(
    monkeypatch: pytest.MonkeyPatch, cpu_count: int | None, cores: int
):
    # macOS and Windows have no sched_getaffinity; cpu_count may not know either.
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cpu_count)

    assert usable_core_count() == cores
    assert default_workers("postgresql://db/stats").count == min(cores, 4)


@pytest.mark.parametrize(
    ("quota", "cores"), [(None, 8), (1.0, 1), (1.5, 2), (0.25, 1), (3.0, 3), (16.0, 8)]
)
def test_a_cpu_quota_caps_the_cores(
    monkeypatch: pytest.MonkeyPatch, quota: float | None, cores: int
):
    # `docker run --cpus 1.5` on an 8-core host: the affinity says 8, the quota 1.5 CPUs.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    monkeypatch.setattr(_serving, "cgroup_cpu_limit", lambda: quota)

    assert usable_core_count() == cores
    assert default_workers("postgresql://db/stats").count == min(cores, 4)


def cgroups(tmp_path: Path, membership: str, files: dict[str, str]) -> tuple[Path, Path]:
    """A control group tree under *tmp_path*: *files* by path, and the process's membership."""
    root = tmp_path / "cgroup"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (tmp_path / "membership").write_text(membership)
    return root, tmp_path / "membership"


@pytest.mark.parametrize(
    ("membership", "files", "limit"),
    [
        # Version 2: the process's own group has no limit, its parent has one.
        (
            "0::/a/b\n",
            {"a/b/cpu.max": "max 100000\n", "a/cpu.max": "150000 100000\n", "cpu.max": "max"},
            1.5,
        ),
        # The smallest of the groups on the way up wins.
        ("0::/a/b\n", {"a/b/cpu.max": "200000 100000", "a/cpu.max": "50000 100000"}, 0.5),
        ("0::/\n", {"cpu.max": "max 100000\n"}, None),
        # Version 2 on a hybrid machine, mounted at unified/.
        ("0::/\n", {"unified/cpu.max": "300000 100000\n"}, 3.0),
        # Version 1, the cpu controller mounted with cpuacct; -1 is no quota.
        (
            "4:memory:/x\n2:cpu,cpuacct:/\n",
            {"cpu,cpuacct/cpu.cfs_quota_us": "200000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000"},
            2.0,
        ),
        (
            "2:cpu:/\n",
            {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},
            None,
        ),
        # Version 1 in a container: the host's path is not mounted there; its own group is.
        (
            "2:cpu:/docker/0123abcd\n",
            {"cpu/cpu.cfs_quota_us": "100000", "cpu/cpu.cfs_period_us": "100000"},
            1.0,
        ),
        # Only the memory controller's group has files: no CPU limit.
        ("4:memory:/\n", {"memory/cpu.cfs_quota_us": "100000"}, None),
        # Files that are not what Linux writes are no limit, never an error.
        ("0::/\n", {"cpu.max": "lots\n"}, None),
        ("0::/\n", {"cpu.max": "100000 0\n"}, None),
        ("2:cpu:/\n", {"cpu/cpu.cfs_quota_us": "x", "cpu/cpu.cfs_period_us": "100000"}, None),
        ("garbage\n\n", {"cpu.max": "100000 100000"}, None),
        ("0::/\n", {}, None),
    ],
)
def test_the_cpu_quota_is_read_from_the_control_groups(
    tmp_path: Path, membership: str, files: dict[str, str], limit: float | None
):
    root, member = cgroups(tmp_path, membership, files)

    assert cgroup_cpu_limit(root, member) == limit


def test_without_control_groups_there_is_no_quota(tmp_path: Path):
    # Not Linux, or a container without /proc/self/cgroup.
    assert cgroup_cpu_limit(tmp_path / "cgroup", tmp_path / "no-such-file") is None


def test_the_start_up_line_says_how_many_and_why():
    assert str(WorkerCount(2, SQLITE)) == "2 workers (one per core, at most 2 for SQLite)"
    assert str(WorkerCount(1, CHDB)) == f"1 worker ({CHDB})"


# -- The garbage collector: tuned in serve's workers, left alone elsewhere --------------------


@pytest.fixture
def own_gc() -> Iterator[None]:
    """The test process's collector as it was, whatever the test did to it."""
    thresholds = gc.get_threshold()
    frozen = gc.get_freeze_count()
    yield
    gc.set_threshold(*thresholds)
    if not frozen:
        gc.unfreeze()


@pytest.fixture
def memory_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PATH", "ALLOWED_APPS", "METRICS", "MAX_BYTES_IN_FLIGHT", "DEADLINE"):
        monkeypatch.delenv(f"UPDATER_STATS_{name}", raising=False)
    monkeypatch.setenv("UPDATER_STATS_STORAGE", "memory://")


@pytest.mark.usefixtures("own_gc", "memory_storage")
def test_a_worker_s_app_is_built_as_from_the_environment_then_the_collector_tuned():
    assert gc.get_threshold() != GC_THRESHOLDS
    assert gc.get_freeze_count() == 0

    app = create_worker_app()
    try:
        assert gc.get_threshold() == GC_THRESHOLDS
        # What start-up built is out of the collector's sight: the app among it.
        assert gc.get_freeze_count() > 0
        assert type(app) is type(create_app_from_env())
        assert app.settings.storage == "memory://"
    finally:
        app.close()


@pytest.mark.usefixtures("own_gc", "memory_storage")
def test_the_dashboard_worker_s_app_is_tuned_too(monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("jinja2")
    monkeypatch.setenv(DASHBOARD_ENV_VAR, "1")
    monkeypatch.setenv(TOKEN_ENV_VAR, "a-token-of-sixteen-characters-or-more")

    app = create_dashboard_worker_app()
    try:
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
        assert app.dashboard is not None
    finally:
        app.dashboard.close()
        app.stats.close()


@pytest.mark.usefixtures("own_gc", "memory_storage")
def test_the_library_s_own_factory_leaves_the_collector_alone():
    # Users run `create_app_from_env` under a server of their own: their process, their GC.
    before = gc.get_threshold()

    app = create_app_from_env()
    app.close()

    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_no_other_module_of_the_package_touches_the_collector():
    # The apps run in users' processes too: only serve's worker factories tune the collector
    # for good.
    src = Path(_serving.__file__).parent
    touching = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in _TUNERS:
                touching.add(path.relative_to(src).as_posix())
            if isinstance(node, ast.ImportFrom) and node.module == "gc":
                touching.add(path.relative_to(src).as_posix())
    assert touching == {"_serving.py"}


# `copy` turns automatic collection off for a while and back on (`_transfer`): its own
# business, and undone. Thresholds and the permanent generation last for the process's life.
_TUNERS = {"set_threshold", "freeze"}


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_workers_stop_when_their_supervisor_is_killed(tmp_path: Path):
    # kill -9 of uvicorn's supervisor (or an out-of-memory kill) used to leave its workers
    # serving on the port, so that a new `serve` could not bind it.
    server = Server(tmp_path, "--workers", "2")
    workers: list[int] = []
    try:
        children = child_processes(server.process.pid)
        workers = [pid for pid in children if "spawn_main" in command_line(pid)]
        assert len(workers) == 2, [command_line(pid) for pid in children]
        assert server.request("POST", data=b"[]")[0] == 200

        server.process.kill()
        server.process.wait(10)
        began = time.monotonic()
        while any(alive(pid) for pid in workers):
            assert time.monotonic() - began < 20, "the workers outlived their supervisor"
            time.sleep(0.1)
    finally:
        for pid in [*workers, *child_processes(server.process.pid)]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        server.log.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, server.port), timeout=5).close()
    # Each stopped as on SIGTERM: storage closed after the requests in flight.
    assert server.output.count("the supervisor process is gone: stopping this worker") == 2
    assert server.output.count("Application shutdown complete") == 2


def test_a_process_without_a_supervisor_watches_for_none():
    # `serve --workers 1` runs the app in its own process: nothing to watch.
    assert watch_the_supervisor() is None
