"""The docs' example backend, installed as a user's package would be, end to end through its
own URL scheme: a real ``updater-stats serve`` stores what devices send in it, and ``report``,
``gate``, ``export`` and ``devices`` read it back, with figures computed by the reference
implementation (the backend has only ``write``, ``close`` and ``events``)."""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from updater_stats.backends import URL_SCHEMES_GROUP
from updater_stats.cli import cli

from .doc_blocks import ROOT, blocks
from .live_server import Server

pytest.importorskip("uvicorn")

APP = "com.example.app"


@pytest.fixture
def jsonl_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The page's `JsonLinesBackend` as package ``my_stats_backend`` with the page's entry
    point, on the path of this process and of the servers it starts."""
    page = ROOT / "docs" / "custom-backends.md"
    backend_code = next(code for code in blocks(page, "python") if "class JsonLinesBackend" in code)
    site = tmp_path / "site"
    site.mkdir()
    (site / "my_stats_backend.py").write_text(backend_code)
    info = site / "my_stats_backend-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-stats-backend\nVersion: 1.0\n")
    # The very entry point the page tells users to declare.
    (info / "entry_points.txt").write_text(
        f"[{URL_SCHEMES_GROUP}]\njsonl = my_stats_backend:JsonLinesBackend.from_url\n"
    )
    assert 'jsonl = "my_stats_backend:JsonLinesBackend.from_url"' in page.read_text()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
    importlib.invalidate_caches()
    return f"jsonl://{tmp_path / 'events.jsonl'}"


def _rollout(now_ms: int) -> list[dict[str, object]]:
    """Five devices install 1.2.0; one of them crashes on it."""
    events: list[dict[str, object]] = []
    for n in range(5):
        common = {
            "app_id": APP,
            "device_id": f"0b5e5c1a-93b4-4f0e-a3a2-1f7f6f3b2d1{n}",
            "platform": "android",
            "version_build": "2.0.0",
            "version_code": "200",
            "version_os": "14",
            "plugin_version": "8.42.0",
            "is_prod": True,
            "is_emulator": False,
        }
        events.append(
            {
                **common,
                "action": "download_complete",
                "version_name": "1.2.0",
                "timestamp": now_ms - 60_000,
            }
        )
        events.append(
            {
                **common,
                "action": "set",
                "version_name": "1.2.0",
                "old_version_name": "1.1.0",
                "timestamp": now_ms - 50_000,
            }
        )
    events.append({**events[-1], "action": "app_crash", "timestamp": now_ms - 40_000})
    return events


def test_serve_report_gate_export_and_devices_on_the_docs_backend(jsonl_url: str, tmp_path: Path):
    events = _rollout(int(time.time() * 1000))
    body = json.dumps(events).encode()
    server = Server(tmp_path, storage=jsonl_url)
    try:
        first = server.request("POST", "/stats", body, {"Content-Type": "application/json"})
        again = server.request("POST", "/stats", body, {"Content-Type": "application/json"})
    finally:
        assert server.stop(), server.output
    assert first[0] == again[0] == 200, server.output  # again: a re-sent batch, stored once
    assert first[1]["status"] == again[1]["status"] == "ok"

    runner = CliRunner()

    def run(command: str, *options: str):
        return runner.invoke(cli, [command, "--storage", jsonl_url, *options])

    def gate(limit: str):
        options = ["--version", "1.2.0", "--min-devices", "5", "--max-failure-rate", limit]
        return run("gate", "--app", APP, *options, "--json")

    exported = run("export")
    report = run("report", "--app", APP, "--format", "json")
    gate_healthy, failing = gate("0.9"), gate("0.01")
    devices = run("devices", "--app", APP, "--format", "json")

    assert exported.exit_code == 0, exported.output
    assert len(exported.output.splitlines()) == len(events)
    assert report.exit_code == 0, report.output
    (version,) = [v for v in json.loads(report.output)["versions"] if v["version"] == "1.2.0"]
    assert (version["devices"], version["installs"], version["failed_devices"]) == (5, 5, 1)
    assert gate_healthy.exit_code == 0, gate_healthy.output
    assert json.loads(gate_healthy.output)["verdict"] == "healthy"
    assert failing.exit_code == 1
    assert json.loads(failing.output)["verdict"] == "at_risk"
    assert devices.exit_code == 0, devices.output
    assert len([json.loads(line) for line in devices.output.splitlines()]) == 5
