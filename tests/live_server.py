"""Real servers over real sockets: `updater-stats serve` as a process, and raw HTTP bytes.

`Server` needs the `server` extra (uvicorn) when it starts; a module that uses it says so with
`pytest.importorskip("uvicorn")`.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"


def free_port() -> int:
    """A local port nothing listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Server:
    """`updater-stats serve` on a free port of *HOST*, started and ready to answer."""

    def __init__(
        self,
        tmp_path: Path,
        *extra: str,
        storage: str | None = None,
        cores: set[int] | None = None,
    ) -> None:
        """*extra*: more options for ``serve``; *cores*: the only cores it may run on (its
        CPU affinity, as ``taskset -c`` sets it), which its default worker count follows."""
        self.port = free_port()
        self.database = tmp_path / "served.sqlite3"
        self.storage = storage or f"sqlite:///{self.database}"
        # A file, not a pipe: access logs would fill a pipe nobody reads and stall the server.
        self.log = (tmp_path / f"server-{self.port}.log").open("wb")
        command = ["serve", "--port", str(self.port), "--storage", self.storage]
        # As users pin a server: the process starts on those cores, and its workers inherit them.
        pinned = [] if cores is None else ["taskset", "-c", ",".join(map(str, sorted(cores)))]
        self.process = subprocess.Popen(
            [
                *pinned,
                sys.executable,
                "-m",
                "updater_stats",
                *command,
                "--log-level",
                "info",
                *extra,
            ],
            cwd=tmp_path,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._ready():
                return
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"the server did not start:\n{self.output}")

    def _ready(self) -> bool:
        try:
            return self.request("GET", "/ready")[0] == 200
        except OSError:
            return False

    def request(
        self,
        method: str,
        path: str = "/stats",
        data: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        try:
            conn.request(method, path, body=data, headers=headers or {})
            response = conn.getresponse()
            content = response.read()
            return response.status, json.loads(content) if content else None
        finally:
            conn.close()

    def stop(self, sig: int = signal.SIGTERM) -> bool:
        """Stop the server; whether it shut down cleanly (storage closed, process finished).

        uvicorn re-raises the signal once it has shut down, so that supervisors see it:
        an exit by that same signal, after the shutdown lines, is a clean exit.
        """
        return self._stop(sig) in {0, -sig} and "Application shutdown complete" in self.output

    def _stop(self, sig: int) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=30)
        finally:
            self.log.close()

    @property
    def output(self) -> str:
        return Path(self.log.name).read_text()


def raw_exchange(host: str, port: int, request: bytes) -> tuple[int, bytes]:
    """Send bytes as they are and read the answer: for requests no HTTP client would send."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request)
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    head, _, content = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), content
