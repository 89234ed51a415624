"""How many workers ``serve`` starts when not told."""

from __future__ import annotations

import os

import pytest

from updater_stats._serving import WorkerCount, default_workers, usable_core_count

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


@pytest.mark.parametrize(("affinity", "workers"), [({0}, 1), ({0, 1}, 2), (set(range(8)), 2)])
def test_the_cores_are_those_the_process_may_run_on(
    monkeypatch: pytest.MonkeyPatch, affinity: set[int], workers: int
):
    # `taskset -c 0 updater-stats serve` on an 8-core machine: one core, one worker.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: affinity, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)

    assert usable_core_count() == len(affinity)
    assert default_workers("sqlite:///stats.sqlite3").count == workers


@pytest.mark.parametrize(("cpu_count", "cores"), [(8, 8), (None, 1)])
def test_without_an_affinity_the_machine_s_cores_count(
    monkeypatch: pytest.MonkeyPatch, cpu_count: int | None, cores: int
):
    # macOS and Windows have no sched_getaffinity; cpu_count may not know either.
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: cpu_count)

    assert usable_core_count() == cores
    assert default_workers("postgresql://db/stats").count == min(cores, 4)


def test_the_start_up_line_says_how_many_and_why():
    assert str(WorkerCount(2, SQLITE)) == "2 workers (one per core, at most 2 for SQLite)"
    assert str(WorkerCount(1, CHDB)) == f"1 worker ({CHDB})"
