"""Helpers the test modules share: import them from here, not from each other."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from updater_stats import AppInfos, StorageBackend

#: The scalar fields every schema before content keys stored, one column each, in order.
V1_FIELDS = (
    "app_id",
    "device_id",
    "platform",
    "action",
    "version_name",
    "old_version_name",
    "version_build",
    "version_code",
    "version_os",
    "plugin_version",
    "custom_id",
    "is_prod",
    "is_emulator",
    "install_source",
    "default_channel",
    "channel",
    "key_id",
)


def legacy_key(event: AppInfos) -> str | None:
    """The key releases before content keys gave an event: six fields, not its whole content."""
    if event.timestamp is None:
        return None
    parts = (
        event.app_id,
        event.device_id,
        event.action,
        event.version_name,
        event.old_version_name or "",
        str(event.timestamp),
    )
    return hashlib.blake2b("\x1f".join(parts).encode(), digest_size=16).hexdigest()


def stored_timestamps(open_backend: Callable[[], StorageBackend]) -> list[int | None]:
    """The timestamps of every stored event, read through a backend opened for the purpose."""
    backend = open_backend()
    try:
        return [e.event.timestamp for e in backend.events()]  # type: ignore[attr-defined]
    finally:
        backend.close()


class Timed(threading.Thread):
    """Runs *call* in a thread: what it returned or raised, and how long it took."""

    def __init__(self, call: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.call = call
        self.result: Any = None
        self.error: BaseException | None = None
        self.took: float | None = None
        self.start()

    def run(self) -> None:
        started = time.monotonic()
        try:
            self.result = self.call()
        except BaseException as exc:
            self.error = exc
        self.took = time.monotonic() - started

    def outcome(self, within: float = 30) -> tuple[Any, BaseException | None, float]:
        """What the call returned, what it raised, and its seconds, once it has finished."""
        self.join(within)
        assert not self.is_alive(), "the call never returned"
        assert self.took is not None
        return self.result, self.error, self.took


@contextmanager
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement run on connections opened meanwhile, its parameters written in."""
    statements: list[str] = []
    connect = sqlite3.connect

    def tracing(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    with monkeypatch.context() as patch:
        patch.setattr(sqlite3, "connect", tracing)
        yield statements


# -- Processes, from Linux' /proc ---------------------------------------------------------------


def _state_and_parent(pid: int) -> tuple[str, int] | None:
    """A process's state letter and parent pid; None once it is gone."""
    try:
        # After the command name, which may hold spaces, in parentheses: state, then parent.
        state, parent = (
            (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[:2]
        )
    except (OSError, ValueError):
        return None
    return state, int(parent)


def alive(pid: int) -> bool:
    """Whether *pid* runs (a zombie, ended and not yet reaped, does not)."""
    found = _state_and_parent(pid)
    return found is not None and found[0] != "Z"


def child_processes(pid: int) -> list[int]:
    """The live processes whose parent is *pid*."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            process = _state_and_parent(int(entry.name))
            if process is not None and process[1] == pid and process[0] != "Z":
                found.append(int(entry.name))
    return found


def command_line(pid: int) -> str:
    """*pid*'s command line, its arguments joined by spaces; "" once it is gone."""
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""
