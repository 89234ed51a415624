"""Use an installed updater-stats the way its users do: run from the venv it was installed in.

    python -m venv /tmp/wheel && /tmp/wheel/bin/pip install "dist/<wheel>[server]"
    /tmp/wheel/bin/python -m scripts.check_installed

From the repository root, so that ``scripts`` is importable; the package itself
comes from the venv (the sources are under src/, which is not on the path).
Checks: the package imports from the venv, not the source tree;
``__version__``, the metadata and ``updater-stats --version`` agree; the
README's quickstart code runs and its route answers; ``updater-stats serve``,
on a free loopback port, answers a device's POST with 200 and stores the event,
then shuts down cleanly on SIGTERM. Exits non-zero on the first failure.
"""

from __future__ import annotations

import http.client
import importlib.metadata
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import updater_stats
from scripts.crash_run import EVENT, free_port, listening
from updater_stats import SQLiteBackend

ROOT = Path(__file__).resolve().parent.parent
COMMAND = Path(sys.executable).parent / "updater-stats"
FENCE = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def check(condition: object, message: str) -> None:
    if not condition:
        raise SystemExit(f"FAILED: {message}")


def installed_from_the_venv() -> None:
    location = Path(updater_stats.__file__).resolve()
    check(
        location.is_relative_to(Path(sys.prefix).resolve()),
        f"updater_stats imported from {location}, not from the venv at {sys.prefix}",
    )
    print(f"imported from {location.parent}")


def one_version() -> None:
    version = importlib.metadata.version("updater-stats")
    check(updater_stats.__version__ == version, f"__version__ {updater_stats.__version__!r}")
    shown = subprocess.run(  # noqa: S603 - the venv's own console script
        [COMMAND, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    check(shown == f"updater-stats, version {version}", f"--version printed {shown!r}")
    print(f"version {version}: metadata, __version__ and --version agree")


def readme_quickstart(workdir: Path) -> None:
    blocks = FENCE.findall((ROOT / "README.md").read_text())
    check(blocks, "README.md has no python block")
    namespace: dict[str, Any] = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    route = namespace["stats_route"]

    def answer(raw: bytes) -> tuple[Any, int]:
        body, status = route(raw)  # the body as the route sends it: JSON bytes
        return json.loads(body), status

    body, status = answer(json.dumps(EVENT).encode())
    check((body, status) == ({"status": "ok"}, 200), f"the route answered {status} {body}")
    body, status = answer(b"not json")
    check(status == 400 and body["error"] == "invalid_json", f"bad JSON: {status} {body}")
    check((workdir / "updater_stats.sqlite3").exists(), "the quickstart stored nothing")
    print("README quickstart: the route stores an event and refuses bad JSON")


def post(port: int, body: bytes) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/stats", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def serve_answers_one_event(workdir: Path) -> None:
    database = workdir / "served.sqlite3"
    port = free_port()
    storage = f"sqlite:///{database}"
    with (workdir / "serve.log").open("wb") as log:
        server = subprocess.Popen(  # noqa: S603 - the venv's own console script
            [COMMAND, "serve", "--port", str(port), "--storage", storage, "--log-level", "info"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while not listening(port):
                check(server.poll() is None, "updater-stats serve exited")
                check(time.monotonic() < deadline, "updater-stats serve did not listen")
                time.sleep(0.1)
            answer = post(port, json.dumps(EVENT).encode())
        finally:
            server.send_signal(signal.SIGTERM)
            code = server.wait(30)
    check(answer == (200, {"status": "ok"}), f"serve answered {answer}")
    # uvicorn re-raises the signal once it has shut down, for supervisors to see.
    output = (workdir / "serve.log").read_text()
    check(
        code in {0, -signal.SIGTERM} and "Application shutdown complete" in output,
        f"serve did not shut down cleanly on SIGTERM (exit {code}):\n{output}",
    )
    backend = SQLiteBackend(str(database))
    try:
        stored = [stored.event.device_id for stored in backend.events()]
    finally:
        backend.close()
    check(stored == [EVENT["device_id"]], f"serve stored {stored}")
    print(f"updater-stats serve: port {port} answered a POST with 200, stored it, stopped")


def main() -> None:
    installed_from_the_venv()
    one_version()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        home = Path.cwd()
        os.chdir(workdir)  # the quickstart stores in the working directory
        try:
            readme_quickstart(workdir)
        finally:
            os.chdir(home)
        serve_answers_one_event(workdir)


if __name__ == "__main__":
    main()
