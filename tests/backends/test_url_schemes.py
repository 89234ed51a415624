"""Storage URL schemes registered by installed packages, through entry points."""

from __future__ import annotations

import importlib
import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from updater_stats import ConfigurationError, MemoryBackend, SQLiteBackend
from updater_stats.backends import URL_SCHEMES_GROUP, backend_from_url
from updater_stats.cli import cli
from updater_stats.testing import assert_same_events, stored_event

# A package as a user would ship it: a backend module and the metadata pip writes for it.
BACKEND_MODULE = '''
from pathlib import Path
from updater_stats.backends import SQLiteBackend


class FolderBackend(SQLiteBackend):
    """A user's backend: events in a SQLite file inside a folder the URL names."""

    @classmethod
    def from_url(cls, url):
        folder = Path(url.split("://", 1)[1])
        folder.mkdir(parents=True, exist_ok=True)
        return cls(folder / "events.sqlite3")


def not_a_backend(url):
    return object()


def broken(url):
    raise RuntimeError("never called")
'''
ENTRY_POINTS = f"""
[{URL_SCHEMES_GROUP}]
folder = folder_backend:FolderBackend.from_url
notabackend = folder_backend:not_a_backend
missing = folder_backend_gone:FolderBackend.from_url
"""


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    (site / "folder_backend.py").write_text(textwrap.dedent(BACKEND_MODULE))
    info = site / "folder_backend-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: folder-backend\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return tmp_path


def test_a_registered_scheme_names_the_package_backend(installed: Path):
    backend = backend_from_url(f"folder://{installed / 'store'}")

    assert type(backend).__name__ == "FolderBackend"
    assert backend.write([stored_event()]).inserted == 1
    backend.close()
    assert (installed / "store" / "events.sqlite3").is_file()


def test_unknown_schemes_list_the_registered_ones_too(installed: Path):
    with pytest.raises(ConfigurationError) as info:
        backend_from_url("nosuch://x")

    assert info.value.code == "unknown_storage_url"
    assert "folder://" in info.value.message
    assert "sqlite://" in info.value.message


def test_a_registered_scheme_that_fails_to_load_or_gives_no_backend_is_a_clear_error(
    installed: Path,
):
    with pytest.raises(ConfigurationError, match=r"missing:// storage is registered by"):
        backend_from_url("missing://x")
    with pytest.raises(ConfigurationError, match=r"not a StorageBackend"):
        backend_from_url("notabackend://x")


def test_built_in_schemes_cannot_be_replaced(installed: Path, tmp_path: Path):
    info = tmp_path / "site" / "folder_backend-1.0.dist-info" / "entry_points.txt"
    info.write_text(info.read_text() + "sqlite = folder_backend:not_a_backend\n")
    importlib.invalidate_caches()

    backend = backend_from_url(f"sqlite:///{tmp_path / 'own.sqlite3'}")

    assert isinstance(backend, SQLiteBackend)
    backend.close()


def test_the_command_line_copies_exports_and_imports_through_a_registered_scheme(
    installed: Path,
):
    source = MemoryBackend()
    events = [stored_event(timestamp=n) for n in range(3)] + [stored_event(timestamp=None)]
    start = SQLiteBackend(installed / "start.sqlite3")
    start.write(events)
    start.close()
    source.write(events)
    folder_url = f"folder://{installed / 'store'}"
    runner = CliRunner()

    copied = runner.invoke(
        cli, ["copy", "--from", f"sqlite:///{installed / 'start.sqlite3'}", "--to", folder_url]
    )
    exported = runner.invoke(cli, ["export", "--storage", folder_url])
    (installed / "backup.jsonl").write_text(exported.output)
    imported = runner.invoke(
        cli,
        ["import", str(installed / "backup.jsonl"), "--storage", f"sqlite:///{installed / 'r.db'}"],
    )

    assert copied.exit_code == 0, copied.output
    assert "4 events" in copied.output
    assert exported.exit_code == 0, exported.output
    assert [json.loads(line)["_key"] for line in exported.output.splitlines()] == [
        e.key for e in events
    ]
    assert imported.exit_code == 0, imported.output
    restored = SQLiteBackend(installed / "r.db")
    assert_same_events(restored.events(), list(source.events()))
    restored.close()
