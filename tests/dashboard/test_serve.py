"""``updater-stats serve --dashboard`` refuses to start without a token, before binding a port,
and serves a backend without SQL (the docs' JSON-lines example) through the app it runs.

That it serves the dashboard next to the stats path on SQLite is the browser test's job: it
runs it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from updater_stats.cli import cli
from updater_stats.dashboard import DASHBOARD_ENV_VAR, TOKEN_ENV_VAR, create_server_app_from_env

from ..conftest import VALID_EVENT
from ..docs_backend import install_jsonl_scheme
from .helpers import AUTH, TOKEN, fields, table_cells

click_testing = pytest.importorskip("click.testing")


def serve(tmp_path: Path, *args: str) -> click_testing.Result:
    storage = f"sqlite:///{tmp_path / 'stats.sqlite3'}"
    return click_testing.CliRunner().invoke(
        cli, ["serve", "--storage", storage, "--port", "1", *args]
    )


def test_no_token_is_an_error_with_a_clear_message(tmp_path: Path, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV_VAR, raising=False)
    result = serve(tmp_path, "--dashboard")

    assert result.exit_code == 1
    assert "the dashboard needs a token" in result.output
    assert "UPDATER_STATS_DASHBOARD_TOKEN" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("tooshort-secret\n", "at least 16 characters"),
        (None, "cannot read the dashboard token file"),
    ],
)
def test_a_bad_token_file_is_an_error(tmp_path: Path, monkeypatch, content, message):
    monkeypatch.delenv(TOKEN_ENV_VAR, raising=False)
    file = tmp_path / "token"
    if content is not None:
        file.write_text(content)
    result = serve(tmp_path, "--dashboard", "--dashboard-token-file", str(file))

    assert result.exit_code == 1
    assert message in result.output
    assert "tooshort-secret" not in result.output  # the token is never shown


def test_an_empty_environment_token_is_no_token(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV_VAR, "   ")
    assert "needs a token" in serve(tmp_path, "--dashboard").output


def test_each_worker_builds_the_dashboard_app_through_serve_s_own_factory(
    tmp_path: Path, monkeypatch
):
    started: list[tuple[str, dict[str, object]]] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **options: started.append((app, options)))
    for name in ("STORAGE", "PATH", "ALLOWED_APPS", "METRICS", "MAX_BYTES_IN_FLIGHT"):
        monkeypatch.setenv(f"UPDATER_STATS_{name}", "unset")  # so that monkeypatch restores them
    monkeypatch.setenv(TOKEN_ENV_VAR, TOKEN)
    monkeypatch.setenv(DASHBOARD_ENV_VAR, "unset")

    result = serve(tmp_path, "--dashboard", "--workers", "2")

    assert result.exit_code == 0, result.output
    ((factory, options),) = started
    # `dashboard.create_server_app_from_env`, then the collector tuned as in every worker.
    assert factory == "updater_stats._serving:create_dashboard_worker_app"
    assert options["workers"] == 2


def test_the_served_app_shows_a_backend_without_sql(tmp_path: Path, monkeypatch):
    # What `serve --dashboard --storage jsonl://...` runs in each worker: a device posts to
    # /stats, and the dashboard's device pages show it, read back through events() alone.
    install_jsonl_scheme(tmp_path, monkeypatch)
    monkeypatch.setenv("UPDATER_STATS_STORAGE", f"jsonl://{tmp_path / 'events.jsonl'}")
    monkeypatch.setenv(DASHBOARD_ENV_VAR, "1")
    monkeypatch.setenv(TOKEN_ENV_VAR, TOKEN)
    app_id, device_id = VALID_EVENT["app_id"], VALID_EVENT["device_id"]
    urls = [
        f"/dashboard/devices?app={app_id}",
        f"/dashboard/devices?app={app_id}&q={device_id}",
        f"/dashboard/device?app={app_id}&id={device_id}",
        "/dashboard/",
        f"/dashboard/app?app={app_id}",
        f"/dashboard/version?app={app_id}&version={VALID_EVENT['version_name']}",
    ]

    crash = {**VALID_EVENT, "action": "app_crash"}

    async def run() -> tuple[httpx.Response, list[httpx.Response]]:
        app = create_server_app_from_env()
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                posted = await client.post("/stats", content=json.dumps([VALID_EVENT, crash]))
                return posted, [await client.get(url, headers=AUTH) for url in urls]
        finally:  # what the server's shutdown does
            app.dashboard.close()
            app.stats.collector.close()

    posted, pages = asyncio.run(run())

    assert posted.status_code == 200, posted.text
    assert [page.status_code for page in pages] == [200] * len(urls)
    listed, searched, device = (page.text for page in pages[:3])
    assert [row[0] for row in table_cells(listed, "devices")] == [device_id]
    assert table_cells(searched, "devices") == table_cells(listed, "devices")
    assert fields(device)["events"] == "2"
    assert fields(device)["bundle"] == VALID_EVENT["version_name"]
    assert len(table_cells(device, "timeline")) == 2
