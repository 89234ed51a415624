"""Who gets in, what every answer carries, and that nothing can be changed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from scripts.sample_rollout import APP

from updater_stats import Collector, ConfigurationError, Privacy, SQLiteBackend
from updater_stats.dashboard import (
    CSP,
    TOKEN_ENV_VAR,
    DashboardApp,
    create_dashboard,
    create_server_app_from_env,
)
from updater_stats.dashboard._auth import COOKIE, Gate

from ..conftest import VALID_EVENT, body
from ..reports.build import event
from .helpers import AUTH, NOW, TOKEN, get, request, table_cells

PAGES = [
    "/dashboard/",
    f"/dashboard/app?app={APP}",
    f"/dashboard/version?app={APP}&version=1.2.0",
    f"/dashboard/devices?app={APP}",
    f"/dashboard/device?app={APP}&id=00000000-0000-0000-0000-000000000001",
]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> DashboardApp:
    path = tmp_path_factory.mktemp("access") / "stats.sqlite3"
    backend = SQLiteBackend(path)
    backend.write([event("set", "1.2.0", dev=1, app_id=APP), event("app_crash", "1.2.0", dev=1)])
    backend.close()
    return create_dashboard(f"sqlite:///{path}", token=TOKEN, clock=lambda: NOW)


@pytest.mark.parametrize("url", PAGES)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token-wrong-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Cookie": f"{COOKIE}=1999999999.{'0' * 64}"},
        {"Cookie": f"{COOKIE}={TOKEN}"},
    ],
    ids=["none", "wrong", "longer", "basic", "forged-cookie", "token-as-cookie"],
)
def test_every_page_refuses_without_the_token(app: DashboardApp, url, headers):
    refused = request(app, "GET", url, headers=headers)

    assert refused.status_code == 401
    assert APP not in refused.text
    # No detail: the same answer whatever was offered.
    assert refused.text == request(app, "GET", "/dashboard/").text
    assert refused.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("url", PAGES)
def test_every_page_answers_with_the_token_and_safe_headers(app: DashboardApp, url):
    response = get(app, url)

    assert response.headers["content-security-policy"] == CSP
    assert "default-src 'self'" in CSP
    assert "frame-ancestors 'none'" in CSP
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert "<script" not in response.text
    assert not re.search(r"\son\w+\s*=", response.text)


def test_login_sets_a_strict_http_only_session_cookie(app: DashboardApp):
    wrong = request(app, "POST", "/dashboard/login", data={"token": "not-the-token-at-all"})
    assert wrong.status_code == 401
    assert "set-cookie" not in wrong.headers

    login = request(app, "POST", "/dashboard/login", data={"token": TOKEN})
    assert login.status_code == 303
    assert login.headers["location"] == "/dashboard/"
    cookie = login.headers["set-cookie"]
    attributes = [part.strip() for part in cookie.split(";")]
    assert "HttpOnly" in attributes
    assert "SameSite=Strict" in attributes
    assert "Path=/dashboard" in attributes
    assert "Secure" not in attributes
    value = attributes[0].split("=", 1)[1]
    assert TOKEN not in cookie

    page = request(app, "GET", "/dashboard/", headers={"Cookie": f"{COOKIE}={value}"})
    assert page.status_code == 200
    assert APP in page.text


def test_the_cookie_is_secure_over_https(app: DashboardApp):
    login = request(app, "POST", "/dashboard/login", data={"token": TOKEN}, scheme="https")
    assert "Secure" in [part.strip() for part in login.headers["set-cookie"].split(";")]


def test_sessions_expire_and_are_bound_to_the_token():
    gate = Gate(TOKEN)
    now = 1_800_000_000.0
    session = gate.session(now)

    assert gate.session_ok(session, now)
    assert gate.session_ok(session, now + 11 * 3600)
    assert not gate.session_ok(session, now + 13 * 3600)
    assert not Gate(TOKEN + "-changed").session_ok(session, now)
    expires, signature = session.split(".")
    assert not gate.session_ok(f"{int(expires) + 999}.{signature}", now)
    assert not gate.session_ok("", now)
    assert not gate.session_ok("not.a.session", now)


def test_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch):
    import hmac  # noqa: PLC0415

    calls = []
    original = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert not Gate(TOKEN).token_ok("x" * len(TOKEN))
    assert Gate(TOKEN).token_ok(TOKEN)
    assert len(calls) == 2


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("url", PAGES)
def test_no_route_changes_data(app: DashboardApp, url, method):
    answer = request(app, method, url, headers=AUTH, content=body(VALID_EVENT))

    assert answer.status_code == 405
    assert get(app, f"/dashboard/app?app={APP}").status_code == 200


def test_no_token_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv(TOKEN_ENV_VAR, raising=False)
    with pytest.raises(ConfigurationError, match="needs a token"):
        create_dashboard("sqlite:///x.sqlite3")
    with pytest.raises(ConfigurationError, match="at least 16"):
        create_dashboard("sqlite:///x.sqlite3", token="short")
    file = tmp_path / "token"
    file.write_text(TOKEN + "\n")
    assert isinstance(create_dashboard("sqlite:///x.sqlite3", token_file=file), DashboardApp)
    monkeypatch.setenv(TOKEN_ENV_VAR, TOKEN)
    assert isinstance(create_dashboard("sqlite:///x.sqlite3"), DashboardApp)


def test_search_hashes_what_is_typed_as_the_intake_does(tmp_path: Path):
    privacy = Privacy(secret=b"s" * 32)
    path = tmp_path / "stats.sqlite3"
    collector = Collector(SQLiteBackend(path), privacy=privacy)
    device_id = "9C2A06C2-7C6E-4F49-9A3C-6E1B1F1A2B3C"
    sent = {**VALID_EVENT, "app_id": APP, "device_id": device_id, "custom_id": "user-42"}
    assert collector.respond(body(sent)).status_code == 200
    collector.close()
    app = create_dashboard(f"sqlite:///{path}", token=TOKEN, privacy=privacy)

    stored = privacy.stored_device_id(device_id)
    assert stored != device_id.lower()
    for typed in [device_id, device_id.lower(), "user-42"]:
        page = get(app, f"/dashboard/devices?app={APP}&q={typed}").text
        assert [row[0] for row in table_cells(page, "devices")] == [stored], typed
    page = get(app, f"/dashboard/devices?app={APP}&q={stored}").text
    assert [row[0] for row in table_cells(page, "devices")] == [stored]
    assert device_id.lower() not in page
    assert "user-42" not in get(app, f"/dashboard/device?app={APP}&id={stored}").text


def test_the_server_app_keeps_the_stats_route_write_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    path = tmp_path / "stats.sqlite3"
    monkeypatch.setenv("UPDATER_STATS_STORAGE", f"sqlite:///{path}")
    monkeypatch.setenv("UPDATER_STATS_DASHBOARD", "1")
    monkeypatch.setenv(TOKEN_ENV_VAR, TOKEN)
    server = create_server_app_from_env()
    sent = {**VALID_EVENT, "app_id": APP, "version_name": "<script>9.9.9"}

    stored = request(server, "POST", "/stats", content=body(sent))
    assert stored.json() == {"status": "ok"}
    for url in ["/stats", f"/stats?app={APP}", "/stats/dashboard", "/dashboard/../stats"]:
        for auth in ({}, AUTH):
            answer = request(server, "GET", url, headers=auth)
            assert "9.9.9" not in answer.text, url
            assert APP not in answer.text, url
    assert request(server, "GET", "/dashboard/").status_code == 401
    page = request(server, "GET", f"/dashboard/app?app={APP}&days=1", headers=AUTH)
    assert page.status_code == 200
    assert "&lt;script&gt;9.9.9" in page.text


# (memory:// is readable now: its pages are computed in Python, see test_pages.py.)
@pytest.mark.parametrize(
    "storage",
    ["sqlite:///{tmp}/missing.sqlite3", "postgresql://127.0.0.1:9/nothing?pool_timeout=1"],
)
def test_storage_it_cannot_read_is_a_503_without_detail(
    tmp_path: Path, storage: str, caplog: pytest.LogCaptureFixture
):
    app = create_dashboard(storage.format(tmp=tmp_path), token=TOKEN)

    answer = request(app, "GET", "/dashboard/", headers=AUTH)

    assert answer.status_code == 503
    assert answer.text == "storage is unavailable"
    assert str(tmp_path) not in answer.text
    assert "cannot read storage" in caplog.text
