"""`AppSettings`: its checks, the environment it reads, and the two apps built from it."""

from __future__ import annotations

import ast
import asyncio
import io
import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any
from wsgiref.util import setup_testing_defaults

import attrs
import pytest

import updater_stats
from updater_stats import (
    AppSettings,
    Collector,
    ConfigurationError,
    MemoryBackend,
    Policy,
    Privacy,
    asgi,
    wsgi,
)
from updater_stats._settings import (
    dashboard_from_env,
    dashboard_token_from_env,
    storage_from_env,
    worker_environ,
)

from .conftest import VALID_EVENT, body

SECRET = "s" * 32
SRC = Path(updater_stats.__file__).parent


# -- The values and their checks ------------------------------------------------------------


def test_the_defaults_are_those_the_apps_always_had():
    settings = AppSettings()

    assert settings == AppSettings(
        storage=None,
        path="/stats",
        ready_path="/ready",
        policy=Policy(),
        body_timeout=30.0,
        privacy=None,
        metrics=False,
        metrics_path="/metrics",
        max_bytes_in_flight=64 * 1024 * 1024,
        deadline=5.0,
    )
    assert settings.max_bytes_in_flight == asgi.DEFAULT_BYTES_IN_FLIGHT
    assert settings.deadline == updater_stats.DEFAULT_DEADLINE


def test_it_is_the_same_class_wherever_it_is_imported_from():
    assert updater_stats.AppSettings is asgi.AppSettings is wsgi.AppSettings
    assert "AppSettings" in asgi.__all__
    assert "AppSettings" in wsgi.__all__
    assert "AppSettings" in updater_stats.__all__


def test_paths_are_normalised_and_numbers_made_floats():
    settings = AppSettings(
        path="api/stats/", ready_path="up", metrics_path="/m/", body_timeout=3, deadline=2
    )

    assert (settings.path, settings.ready_path, settings.metrics_path) == (
        "/api/stats",
        "/up",
        "/m",
    )
    assert settings.body_timeout == 3.0
    assert isinstance(settings.body_timeout, float)
    assert isinstance(settings.deadline, float)
    assert AppSettings(policy=None).policy == Policy()


def test_it_is_frozen():
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        AppSettings().path = "/other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"path": 3}, "path must be a path such as '/stats', not 3"),
        ({"ready_path": None}, "ready_path must be a path"),
        ({"metrics_path": b"/m"}, "metrics_path must be a path"),
        ({"policy": "strict"}, "policy must be a Policy, not str"),
        ({"privacy": "hash"}, "privacy must be a Privacy or None, not str"),
        ({"body_timeout": 0}, "body_timeout must be a positive number of seconds, not 0.0"),
        ({"body_timeout": -1.5}, "body_timeout must be a positive number"),
        ({"body_timeout": math.inf}, "body_timeout must be a positive number"),
        ({"body_timeout": "30"}, "body_timeout must be a positive number of seconds, not '30'"),
        ({"body_timeout": True}, "body_timeout must be a positive number of seconds, not True"),
        ({"deadline": 0}, "deadline must be a positive number of seconds, not 0.0"),
        ({"deadline": math.nan}, "deadline must be a positive number"),
        ({"metrics": 1}, "metrics must be True or False, not 1"),
        ({"max_bytes_in_flight": 0}, "max_bytes_in_flight must be a whole number of bytes"),
        ({"max_bytes_in_flight": 1.5}, "max_bytes_in_flight must be a whole number of bytes"),
        ({"max_bytes_in_flight": True}, "max_bytes_in_flight must be a whole number of bytes"),
        ({"ready_path": "/stats"}, "ready_path '/stats' is where devices POST"),
        ({"ready_path": "/"}, "ready_path '/' is where devices POST"),
        ({"metrics": True, "metrics_path": "stats"}, "metrics_path '/stats' is where devices"),
        ({"metrics": True, "metrics_path": "/"}, "metrics_path '/' is where devices POST"),
        ({"metrics": True, "metrics_path": "/ready"}, "metrics_path '/ready' is the ready_path"),
    ],
)
def test_a_bad_value_is_a_configuration_error_naming_the_field(
    options: dict[str, Any], message: str
):
    with pytest.raises(ConfigurationError, match="^" + message.replace("(", r"\(")) as info:
        AppSettings(**options)
    assert info.value.code == "bad_setting"


def test_a_metrics_path_is_free_while_metrics_are_off():
    assert AppSettings(metrics_path="/stats").metrics_path == "/stats"


def test_a_password_in_the_storage_url_stays_out_of_repr():
    settings = AppSettings(storage="postgresql://stats:hunter2hunter2@db:5432/app")

    assert "hunter2" not in repr(settings)
    assert "postgresql://stats:***@db:5432/app" in repr(settings)
    assert settings.storage == "postgresql://stats:hunter2hunter2@db:5432/app"
    assert "'sqlite:///stats.sqlite3'" in repr(AppSettings(storage="sqlite:///stats.sqlite3"))


# -- The environment --------------------------------------------------------------------------
def test_a_storage_url_of_no_known_scheme_is_refused_where_the_environment_is_read():
    with pytest.raises(ConfigurationError) as info:
        AppSettings.from_env({"UPDATER_STATS_STORAGE": "mysql://stats:hunter2@db/app"})
    assert info.value.code == "bad_setting"
    assert info.value.message.startswith("UPDATER_STATS_STORAGE: unknown storage URL")
    assert "'mysql://stats:***@db/app'" in info.value.message  # the password stays out
    assert "hunter2" not in info.value.message
    # Known schemes pass without opening anything: no server, no file.
    for url in ("postgresql://nowhere.invalid/x", "sqlite:////no/such/dir/s.sqlite3", "memory://"):
        assert AppSettings.from_env({"UPDATER_STATS_STORAGE": url}).storage == url


def test_an_empty_environment_gives_the_defaults_and_the_default_storage():
    assert AppSettings.from_env({}) == AppSettings(storage="sqlite:///updater_stats.sqlite3")
    blank = dict.fromkeys(
        [
            "UPDATER_STATS_STORAGE",
            "UPDATER_STATS_PATH",
            "UPDATER_STATS_ALLOWED_APPS",
            "UPDATER_STATS_METRICS",
            "UPDATER_STATS_MAX_BYTES_IN_FLIGHT",
            "UPDATER_STATS_DEADLINE",
            "UPDATER_STATS_PSEUDONYM_SECRET",
            "UPDATER_STATS_CUSTOM_ID",
        ],
        "",
    )
    assert AppSettings.from_env(blank) == AppSettings.from_env({})


def test_every_variable_is_read():
    settings = AppSettings.from_env(
        {
            "UPDATER_STATS_STORAGE": "memory://",
            "UPDATER_STATS_PATH": "api/stats",
            "UPDATER_STATS_ALLOWED_APPS": " com.example.app,, com.example.beta ,",
            "UPDATER_STATS_METRICS": " Yes ",
            "UPDATER_STATS_MAX_BYTES_IN_FLIGHT": " 123456 ",
            "UPDATER_STATS_DEADLINE": "2.5",
            "UPDATER_STATS_PSEUDONYM_SECRET": SECRET,
            "UPDATER_STATS_CUSTOM_ID": "drop",
        }
    )

    assert settings.storage == "memory://"
    assert settings.path == "/api/stats"
    assert settings.policy == Policy(allowed_app_ids={"com.example.app", "com.example.beta"})
    assert settings.metrics is True
    assert settings.max_bytes_in_flight == 123456
    assert settings.deadline == 2.5
    assert settings.privacy == Privacy(secret=SECRET, custom_id="drop")
    # What has no variable keeps its default.
    assert (settings.ready_path, settings.body_timeout, settings.metrics_path) == (
        "/ready",
        30.0,
        "/metrics",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", True), ("true", True), ("ON", True), ("0", False), ("no", False), ("Off", False)],
)
def test_metrics_takes_the_usual_words_for_on_and_off(value: str, expected: bool):
    assert AppSettings.from_env({"UPDATER_STATS_METRICS": value}).metrics is expected


def test_the_process_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("UPDATER_STATS_STORAGE", "memory://")
    monkeypatch.setenv("UPDATER_STATS_DEADLINE", "1.5")
    monkeypatch.delenv("UPDATER_STATS_PSEUDONYM_SECRET", raising=False)

    settings = AppSettings.from_env()

    assert (settings.storage, settings.deadline) == ("memory://", 1.5)
    assert storage_from_env() == "memory://"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("UPDATER_STATS_METRICS", "enabled", "UPDATER_STATS_METRICS must be 1 or 0"),
        ("UPDATER_STATS_MAX_BYTES_IN_FLIGHT", "64MiB", "UPDATER_STATS_MAX_BYTES_IN_FLIGHT must be"),
        ("UPDATER_STATS_MAX_BYTES_IN_FLIGHT", "0", "UPDATER_STATS_MAX_BYTES_IN_FLIGHT must be"),
        ("UPDATER_STATS_MAX_BYTES_IN_FLIGHT", "-5", "UPDATER_STATS_MAX_BYTES_IN_FLIGHT must be"),
        ("UPDATER_STATS_MAX_BYTES_IN_FLIGHT", "1.5", "UPDATER_STATS_MAX_BYTES_IN_FLIGHT must be"),
        ("UPDATER_STATS_DEADLINE", "soon", "UPDATER_STATS_DEADLINE must be a positive number"),
        ("UPDATER_STATS_DEADLINE", "0", "UPDATER_STATS_DEADLINE must be a positive number"),
        ("UPDATER_STATS_DEADLINE", "inf", "UPDATER_STATS_DEADLINE must be a positive number"),
        ("UPDATER_STATS_CUSTOM_ID", "scramble", "UPDATER_STATS_CUSTOM_ID must be keep, hash"),
        ("UPDATER_STATS_CUSTOM_ID", "hash", "hashing device_id or custom_id needs a secret"),
        ("UPDATER_STATS_PSEUDONYM_SECRET", "short", "UPDATER_STATS_PSEUDONYM_SECRET: the pseud"),
        ("UPDATER_STATS_PATH", "/ready", "UPDATER_STATS_PATH='/ready': ready_path '/ready' is"),
    ],
)
def test_a_bad_variable_is_a_configuration_error_naming_it(name: str, value: str, message: str):
    with pytest.raises(ConfigurationError, match="^" + message) as info:
        AppSettings.from_env({name: value})
    if name == "UPDATER_STATS_PSEUDONYM_SECRET":
        assert value not in str(info.value)  # a secret, even a bad one, is never shown


def test_a_path_that_clashes_with_metrics_names_the_path_variable():
    environ = {"UPDATER_STATS_PATH": "/metrics", "UPDATER_STATS_METRICS": "1"}
    with pytest.raises(ConfigurationError, match=r"^UPDATER_STATS_PATH='/metrics': metrics_path"):
        AppSettings.from_env(environ)


def test_the_dashboard_variables():
    assert dashboard_from_env({}) is False
    assert dashboard_from_env({"UPDATER_STATS_DASHBOARD": "1"}) is True
    with pytest.raises(ConfigurationError, match=r"^UPDATER_STATS_DASHBOARD must be 1 or 0"):
        dashboard_from_env({"UPDATER_STATS_DASHBOARD": "please"})
    assert dashboard_token_from_env({"UPDATER_STATS_DASHBOARD_TOKEN": "  t0ken  "}) == "t0ken"
    assert dashboard_token_from_env({"UPDATER_STATS_DASHBOARD_TOKEN": "  "}) is None


def test_what_serve_hands_its_workers_reads_back_as_the_same_settings():
    settings = AppSettings(
        storage="sqlite:///stats.sqlite3",
        path="api/stats",
        policy=Policy(allowed_app_ids={"com.example.beta", "com.example.app"}),
        metrics=True,
        max_bytes_in_flight=1_000_000,
        deadline=2.5,
    )

    environ = worker_environ(settings)

    assert environ["UPDATER_STATS_ALLOWED_APPS"] == "com.example.app,com.example.beta"
    assert AppSettings.from_env(environ) == settings
    off = AppSettings(storage="memory://", deadline=1 / 3)
    assert AppSettings.from_env(worker_environ(off)) == off
    with pytest.raises(ConfigurationError, match="only a storage URL"):
        worker_environ(AppSettings(storage=MemoryBackend()))


def test_only_the_settings_module_reads_the_environment():
    """Every other reader goes through `_settings`, so that each variable means one thing."""
    # Modules that touch os.environ for a reason of their own, and that reason.
    allowed = {
        "_settings.py": "the one reader of updater-stats' variables",
        "privacy.py": "Privacy.from_env's default mapping, public since before AppSettings",
        "cli.py": "serve writes its workers' environment (and prometheus-client's directory)",
        "_prometheus.py": "PROMETHEUS_MULTIPROC_DIR is prometheus-client's variable",
        "reports/_render.py": "COLUMNS, the terminal's width",
    }
    found = set()
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            reads = (
                isinstance(node, ast.Attribute)
                and node.attr in {"environ", "getenv", "environb"}
                and isinstance(node.value, ast.Name)
                and node.value.id == "os"
            ) or (isinstance(node, ast.ImportFrom) and node.module == "os")
            if reads:
                found.add(path.relative_to(SRC).as_posix())
    assert found == set(allowed)


# -- The apps built from them -----------------------------------------------------------------


def asgi_answer(app: Any, method: str, path: str, data: bytes = b"") -> tuple[int, bytes]:
    messages = [{"type": "http.request", "body": data, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-length", str(len(data)).encode())] if data else []
    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    asyncio.run(app(scope, receive, send))
    start, content = sent
    return start["status"], content["body"]


def wsgi_answer(app: Any, method: str, path: str, data: bytes = b"") -> tuple[int, bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_LENGTH": str(len(data)) if data else "",
        "wsgi.input": io.BytesIO(data),
    }
    setup_testing_defaults(environ)
    statuses: list[str] = []
    content = b"".join(app(environ, lambda status, headers: statuses.append(status)))
    return int(statuses[0].split()[0]), content


def test_both_apps_built_from_one_settings_object_behave_alike():
    settings = AppSettings(
        storage="memory://",
        path="/api/stats",
        ready_path="/up",
        policy=Policy(allowed_app_ids={"com.example.app"}),
        metrics=True,
        metrics_path="/internal/metrics",
        deadline=2.0,
    )
    asgi_app = asgi.create_app(settings=settings)
    wsgi_app = wsgi.create_app(settings=settings)
    requests = [
        ("POST", "/api/stats", body({**VALID_EVENT, "timestamp": 1})),
        ("POST", "/", body([{**VALID_EVENT, "timestamp": 2}, {**VALID_EVENT, "app_id": "x.y.z"}])),
        ("POST", "/api/stats", body({**VALID_EVENT, "app_id": "com.example.other"})),
        ("POST", "/api/stats", b"not json"),
        ("GET", "/api/stats", b""),
        ("HEAD", "/api/stats", b""),
        ("GET", "/up", b""),
        ("PUT", "/api/stats", b""),
        ("GET", "/stats", b""),
        ("POST", "/up", body(VALID_EVENT)),
    ]
    try:
        for method, path, data in requests:
            assert asgi_answer(asgi_app, method, path, data) == wsgi_answer(
                wsgi_app, method, path, data
            ), (method, path)
        for app, answer in ((asgi_app, asgi_answer), (wsgi_app, wsgi_answer)):
            assert app.settings is settings
            assert app.collector.deadline == 2.0
            assert app.collector.policy is settings.policy
            assert len(app.collector.backend) == 2  # type: ignore[arg-type]
            status, text = answer(app, "GET", "/internal/metrics")
            assert status == 200
            assert b'updater_stats_requests_total{code="ok"} 2.0' in text
    finally:
        asgi_app.close()
        wsgi_app.close()
    assert asgi_app.budget.limit == settings.max_bytes_in_flight


@pytest.mark.parametrize("module", [asgi, wsgi], ids=["asgi", "wsgi"])
def test_the_keyword_arguments_still_build_the_app(module: ModuleType):
    backend = MemoryBackend()
    policy = Policy(max_body_bytes=1000)
    privacy = Privacy(secret=SECRET)

    app = module.create_app(
        backend,
        path="collect/",
        ready_path="/up",
        policy=policy,
        privacy=privacy,
        metrics=True,
        metrics_path="/m",
        deadline=2,
    )

    assert app.settings == AppSettings(
        storage=backend,
        path="/collect",
        ready_path="/up",
        policy=policy,
        privacy=privacy,
        metrics=True,
        metrics_path="/m",
        deadline=2.0,
    )
    assert app.collector.backend is backend
    assert (app.collector.policy, app.collector.privacy) == (policy, privacy)
    assert app.collector.deadline == 2.0
    assert app.exporter is not None
    status, content = (asgi_answer if module is asgi else wsgi_answer)(
        app, "POST", "/collect", body(VALID_EVENT)
    )
    assert (status, json.loads(content)) == (200, {"status": "ok"})
    app.close()


def test_the_asgi_app_takes_its_own_two_options_as_keywords_too():
    app = asgi.create_app(MemoryBackend(), body_timeout=3, max_bytes_in_flight=300_000)
    assert (app.settings.body_timeout, app.budget.limit) == (3.0, 300_000)
    direct = asgi.StatsASGIApp(MemoryBackend(), max_bytes_in_flight=1000)
    assert direct.budget.limit == 1000
    # Under WSGI the server reads and times bodies: the same settings are taken, and unused.
    assert wsgi.create_app(MemoryBackend(), body_timeout=3).settings.body_timeout == 3.0


@pytest.mark.parametrize("module", [asgi, wsgi], ids=["asgi", "wsgi"])
def test_keywords_and_storage_replace_fields_of_the_settings_given(module: ModuleType):
    shared = AppSettings(storage="memory://", path="/a", deadline=3.0, metrics=True)
    backend = MemoryBackend()

    app = module.create_app(backend, settings=shared, deadline=1.0, metrics=False)

    assert app.settings == attrs.evolve(shared, storage=backend, deadline=1.0, metrics=False)
    assert shared == AppSettings(storage="memory://", path="/a", deadline=3.0, metrics=True)
    assert app.collector.backend is backend
    assert module.create_app(None, settings=shared).settings is shared  # None: not given
    app.close()


@pytest.mark.parametrize("module", [asgi, wsgi], ids=["asgi", "wsgi"])
def test_a_misspelt_keyword_is_a_type_error_naming_it(module: ModuleType):
    backend = MemoryBackend()
    with pytest.raises(TypeError, match="unexpected keyword argument 'deadlnie': the apps take"):
        module.create_app(backend, deadlnie=2)
    with pytest.raises(TypeError, match="settings must be an AppSettings, not dict"):
        module.create_app(settings={"path": "/x"})
    backend.ping()  # nothing was built over it, so nothing closed it


@pytest.mark.parametrize("module", [asgi, wsgi], ids=["asgi", "wsgi"])
def test_a_collector_given_keeps_its_own_and_stays_open(module: ModuleType):
    collector = Collector(MemoryBackend(), deadline=3.0)

    app = module.create_app(settings=AppSettings(storage=collector, deadline=1.0))
    app.close()

    assert app.collector is collector
    assert collector.deadline == 3.0
    assert collector.handle(body(VALID_EVENT)) == {"status": "ok"}
    collector.close()


@pytest.mark.parametrize("module", [asgi, wsgi], ids=["asgi", "wsgi"])
def test_create_app_from_env_is_create_app_over_from_env(
    module: ModuleType, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("UPDATER_STATS_STORAGE", "memory://")
    monkeypatch.setenv("UPDATER_STATS_PATH", "/collect")
    monkeypatch.setenv("UPDATER_STATS_MAX_BYTES_IN_FLIGHT", "4096")

    app = module.create_app_from_env()

    assert app.settings == AppSettings.from_env()
    app.close()
    monkeypatch.setenv("UPDATER_STATS_METRICS", "sometimes")
    with pytest.raises(ConfigurationError, match="UPDATER_STATS_METRICS"):
        module.create_app_from_env()
