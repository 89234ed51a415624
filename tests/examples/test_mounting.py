"""The library's own ASGI and WSGI apps mounted in FastAPI and Flask, through their test clients."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from updater_stats import SQLiteBackend

from ..conftest import VALID_EVENT, body, fixture_bytes, load_fixture
from .conftest import EXAMPLES, _httpx_is_fine

if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))


def fresh_import(name: str, storage: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The example as a new process would import it, with its storage in *storage*."""
    monkeypatch.setenv("UPDATER_STATS_STORAGE", f"sqlite:///{storage}")
    sys.modules.pop(name, None)
    return importlib.import_module(name)


def stored_wire(storage: Path) -> list[dict[str, object]]:
    backend = SQLiteBackend(storage)
    try:
        return [e.event.to_wire() for e in backend.events()]
    finally:
        backend.close()


@pytest.fixture
def fastapi_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    pytest.importorskip("fastapi")
    with _httpx_is_fine():
        testclient = importlib.import_module("fastapi.testclient")
    module = fresh_import("fastapi_mount", tmp_path / "s.sqlite3", monkeypatch)
    with testclient.TestClient(module.app) as client:
        yield client


@pytest.fixture
def flask_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    pytest.importorskip("flask")
    module = fresh_import("flask_mount", tmp_path / "s.sqlite3", monkeypatch)
    return module.app.test_client()


def test_asgi_app_mounted_in_fastapi(fastapi_client, tmp_path: Path):
    client = fastapi_client

    batch = client.post("/hooks/stats", content=fixture_bytes("android_batch"))
    single = client.post("/hooks", content=body(VALID_EVENT))
    bad = client.post("/hooks/stats", content=b"{")

    assert batch.status_code == 200
    assert [r["status"] for r in batch.json()["results"]] == ["ok"] * 6
    assert (single.status_code, single.json()) == (200, {"status": "ok"})
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_json")
    assert client.get("/hooks/stats").json() == {"status": "ok"}
    assert client.get("/hooks/ready").json() == {"status": "ok", "storage": "ok"}
    assert client.get("/").json() == {"app": "yours"}
    assert stored_wire(tmp_path / "s.sqlite3") == [*load_fixture("android_batch"), VALID_EVENT]


def test_wsgi_app_mounted_in_flask(flask_client, tmp_path: Path):
    client = flask_client

    batch = client.post("/hooks/stats", data=fixture_bytes("ios_batch"))
    bad = client.post("/hooks/stats", data=body({**VALID_EVENT, "is_prod": "true"}))
    wrong_method = client.put("/hooks/stats")

    assert batch.status_code == 200
    assert len(batch.get_json()["results"]) == 3
    assert (bad.status_code, bad.get_json()["moreInfo"]["fields"]) == (400, ["is_prod"])
    assert wrong_method.status_code == 405
    assert client.get("/hooks/stats").get_json() == {"status": "ok"}
    assert client.get("/").get_json() == {"app": "yours"}
    assert stored_wire(tmp_path / "s.sqlite3") == load_fixture("ios_batch")


def test_dashboard_mounted_in_fastapi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("fastapi")
    pytest.importorskip("jinja2")
    with _httpx_is_fine():
        testclient = importlib.import_module("fastapi.testclient")
    token = "a-dashboard-token-for-the-example"
    monkeypatch.setenv("UPDATER_STATS_DASHBOARD_TOKEN", token)
    module = fresh_import("fastapi_dashboard", tmp_path / "s.sqlite3", monkeypatch)
    sent = {**VALID_EVENT, "version_name": "<b>1.2.0</b>"}

    with testclient.TestClient(module.app) as client:
        stored = client.post("/hooks/stats", content=body(sent))
        refused = client.get(f"/dashboard/app?app={VALID_EVENT['app_id']}")
        login = client.post("/dashboard/login", data={"token": token}, follow_redirects=False)
        cookie = login.headers["set-cookie"].split(";")[0]
        apps = client.get("/dashboard/", headers={"Cookie": cookie})
        page = client.get(
            f"/dashboard/app?app={VALID_EVENT['app_id']}&days=90",
            headers={"Authorization": f"Bearer {token}"},
        )
        home = client.get("/")

    assert stored.json() == {"status": "ok"}
    assert refused.status_code == 401
    assert login.status_code == 303
    assert login.headers["location"] == "/dashboard/"
    assert "Path=/dashboard" in login.headers["set-cookie"]
    assert apps.status_code == 200
    assert f'href="/dashboard/app?app={VALID_EVENT["app_id"]}"' in apps.text
    assert page.status_code == 200
    assert 'href="/dashboard/static/dashboard.css"' in page.text
    assert "&lt;b&gt;1.2.0&lt;/b&gt;" in page.text
    assert home.json() == {"app": "yours"}
