"""Each example app behind one small client interface, driven by its framework's own test client.

The examples use the module-level `updater_stats.respond` / `arespond`, as users' routes do, so
every test points the default collector at storage of its own with `updater_stats.configure`
and the fixtures put the previous default back afterwards.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

import attrs
import pytest

import updater_stats
from updater_stats import Collector, MemoryBackend, Policy, StorageBackend

ROOT = Path(__file__).parent.parent.parent
EXAMPLES = ROOT / "examples"
# The examples are scripts, not a package: import them the way their run commands do.
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

#: What Android devices send; iOS sends plain ``application/json``.
ANDROID_CONTENT_TYPE = "application/json; charset=utf-8"
#: Seconds any single call into an app may take before the test fails instead of hanging.
CALL_TIMEOUT = 30.0

FRAMEWORKS = ["flask", "fastapi", "starlette", "django", "aiohttp", "litestar"]
ASYNC_FRAMEWORKS = ["fastapi", "starlette", "aiohttp", "litestar"]
#: The examples: a module, or for Django a project package, in examples/.
EXAMPLE_NAMES = [f"{framework}_app" for framework in FRAMEWORKS]
#: The library's own ASGI and WSGI apps mounted in a framework instead of a route.
MOUNT_NAMES = ["fastapi_mount", "flask_mount", "fastapi_dashboard"]

T = TypeVar("T")


@attrs.frozen
class Answer:
    status: int
    content_type: str
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


class StatsClient(Protocol):
    """POST and GET on an example's ``/stats`` route, through the framework's test client."""

    def post(self, body: bytes, *, content_type: str = ANDROID_CONTENT_TYPE) -> Answer: ...

    def get(self) -> Answer: ...


@attrs.define
class FlaskClient:
    _client: Any

    def post(self, body: bytes, *, content_type: str = ANDROID_CONTENT_TYPE) -> Answer:
        response = self._client.post("/stats", data=body, content_type=content_type)
        return Answer(response.status_code, response.content_type, response.get_data())

    def get(self) -> Answer:
        response = self._client.get("/stats")
        return Answer(response.status_code, response.content_type, response.get_data())


@attrs.define
class DjangoClient:
    _client: Any

    def post(self, body: bytes, *, content_type: str = ANDROID_CONTENT_TYPE) -> Answer:
        response = self._client.post("/stats", data=body, content_type=content_type)
        return Answer(response.status_code, response["Content-Type"], response.content)

    def get(self) -> Answer:
        response = self._client.get("/stats")
        return Answer(response.status_code, response["Content-Type"], response.content)


@attrs.define
class HTTPXClient:
    """Starlette's, FastAPI's and Litestar's TestClient: httpx clients over the ASGI app."""

    _client: Any

    def post(self, body: bytes, *, content_type: str = ANDROID_CONTENT_TYPE) -> Answer:
        response = self._client.post("/stats", content=body, headers={"content-type": content_type})
        return Answer(response.status_code, response.headers["content-type"], response.content)

    def get(self) -> Answer:
        response = self._client.get("/stats")
        return Answer(response.status_code, response.headers["content-type"], response.content)


@attrs.define
class AiohttpClient:
    """aiohttp's TestClient and TestServer, on an event loop of their own in a thread.

    Tests call it from plain functions, and from several threads at once, like the others.
    """

    _loop: asyncio.AbstractEventLoop
    _client: Any

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(CALL_TIMEOUT)

    async def _answer(self, method: str, **kwargs: Any) -> Answer:
        async with self._client.request(method, "/stats", **kwargs) as response:
            return Answer(response.status, response.headers["Content-Type"], await response.read())

    def post(self, body: bytes, *, content_type: str = ANDROID_CONTENT_TYPE) -> Answer:
        # A BytesIO, as aiohttp's client asks for bodies of more than 1 MiB.
        data = io.BytesIO(body)
        return self._run(self._answer("POST", data=data, headers={"Content-Type": content_type}))

    def get(self) -> Answer:
        return self._run(self._answer("GET"))


def _open_aiohttp(stack: contextlib.ExitStack) -> AiohttpClient:
    import aiohttp_app  # noqa: PLC0415
    from aiohttp.test_utils import TestClient, TestServer  # noqa: PLC0415

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="aiohttp-test-loop", daemon=True)
    thread.start()

    def stop_loop() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(CALL_TIMEOUT)
        loop.close()

    stack.callback(stop_loop)

    async def start() -> Any:
        client = TestClient(TestServer(aiohttp_app.create_app(), host="127.0.0.1"))
        await client.start_server()
        return client

    client = asyncio.run_coroutine_threadsafe(start(), loop).result(CALL_TIMEOUT)
    stack.callback(
        lambda: asyncio.run_coroutine_threadsafe(client.close(), loop).result(CALL_TIMEOUT)
    )
    return AiohttpClient(loop, client)


@pytest.fixture(scope="session")
def django_environment() -> Iterator[None]:
    """Django set up once, with the example's settings and its test environment."""
    pytest.importorskip("django")
    import django  # noqa: PLC0415
    from django.test.utils import setup_test_environment, teardown_test_environment  # noqa: PLC0415

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_SETTINGS_MODULE", "django_app.settings")
        django.setup()
        setup_test_environment()  # lets the test client's "testserver" host in
        yield
        teardown_test_environment()


@contextlib.contextmanager
def _httpx_is_fine() -> Iterator[None]:
    """Import Starlette's TestClient without its warning that it prefers httpx2.

    httpx2 needs Python 3.11; the TestClient still works with httpx, which the frameworks
    extra installs and which Litestar's TestClient needs anyway.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        yield


def open_client(
    framework: str, stack: contextlib.ExitStack, request: pytest.FixtureRequest
) -> StatsClient:
    """The example app for *framework* behind its own test client; *stack* closes it."""
    if framework == "flask":
        import flask_app  # noqa: PLC0415

        return FlaskClient(flask_app.app.test_client())
    if framework == "django":
        request.getfixturevalue("django_environment")
        from django.test import Client  # noqa: PLC0415

        return DjangoClient(Client())
    if framework == "aiohttp":
        return _open_aiohttp(stack)
    if framework == "litestar":
        import litestar_app  # noqa: PLC0415
        from litestar.testing import TestClient as LitestarTestClient  # noqa: PLC0415

        return HTTPXClient(stack.enter_context(LitestarTestClient(litestar_app.app)))
    if framework == "fastapi":
        with _httpx_is_fine():
            from fastapi.testclient import TestClient as FastAPITestClient  # noqa: PLC0415

        import fastapi_app  # noqa: PLC0415

        return HTTPXClient(stack.enter_context(FastAPITestClient(fastapi_app.app)))
    if framework == "starlette":
        with _httpx_is_fine():
            from starlette.testclient import TestClient as StarletteTestClient  # noqa: PLC0415

        import starlette_app  # noqa: PLC0415

        return HTTPXClient(stack.enter_context(StarletteTestClient(starlette_app.app)))
    raise AssertionError(framework)


def _framework(request: pytest.FixtureRequest) -> str:
    framework: str = request.param
    pytest.importorskip(framework)
    return framework


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    return _framework(request)


@pytest.fixture(params=ASYNC_FRAMEWORKS)
def async_framework(request: pytest.FixtureRequest) -> str:
    return _framework(request)


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Collector]]:
    """`updater_stats.configure` for one test; the default collector from before comes back."""
    # The core has no public way to put the default collector back; see the examples' report.
    monkeypatch.setattr(updater_stats._collector, "_default", None)

    def configure_for_test(storage: StorageBackend, *, policy: Policy | None = None) -> Collector:
        return updater_stats.configure(storage, policy=policy)

    yield configure_for_test
    updater_stats._collector._close_default()


@pytest.fixture
def storage(configure: Callable[..., Collector]) -> MemoryBackend:
    """A fresh memory backend behind the module-level `respond` / `arespond`."""
    backend = MemoryBackend()
    configure(backend)
    return backend


def _client(framework: str, request: pytest.FixtureRequest) -> Iterator[StatsClient]:
    with contextlib.ExitStack() as stack:
        yield open_client(framework, stack, request)


@pytest.fixture
def stats_client(
    framework: str, storage: MemoryBackend, request: pytest.FixtureRequest
) -> Iterator[StatsClient]:
    """Every example in turn, storing into `storage`."""
    yield from _client(framework, request)


@pytest.fixture
def async_stats_client(
    async_framework: str, request: pytest.FixtureRequest
) -> Iterator[StatsClient]:
    """The async examples in turn; the test configures storage itself."""
    yield from _client(async_framework, request)


# Real servers, started with the run command that each example's header gives.

#: Seconds a server has to start and to stop.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


def header_line(path: Path, label: str) -> str:
    """The text after ``label:`` in the module docstring of *path*, up to a ``(`` remark."""
    docstring = ast.get_docstring(ast.parse(path.read_text())) or ""
    for line in docstring.splitlines():
        if line.startswith(f"{label}:"):
            return line.removeprefix(f"{label}:").split("(")[0].strip()
    raise AssertionError(f"{path} has no {label}: line")


def example_file(name: str) -> Path:
    """``flask_app`` -> examples/flask_app.py; the Django project's header is its __init__.py."""
    package = EXAMPLES / name / "__init__.py"
    return package if package.exists() else EXAMPLES / f"{name}.py"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_command(run: str, port: int) -> list[str]:
    """A header's run command, with this interpreter and a loopback address and port added."""
    program, *arguments = shlex.split(run)
    address = ["--host", "127.0.0.1", "--port", str(port)]
    if program == "uvicorn":
        return [sys.executable, "-m", "uvicorn", *arguments, *address, "--no-access-log"]
    if program == "flask":
        return [sys.executable, "-m", "flask", *arguments, *address]
    if program == "django-admin":
        return [sys.executable, "-m", "django", *arguments, "--noreload", f"127.0.0.1:{port}"]
    raise AssertionError(f"no way to choose the port of {run!r}")


@attrs.define
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until_serving(self) -> None:
        import httpx  # noqa: PLC0415

        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the server exited with {self.process.returncode}:\n{self.log_text}")
            try:
                if httpx.get(self.url, timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        pytest.fail(f"the server did not answer within {START_TIMEOUT} s:\n{self.log_text}")

    def stop(self) -> int:
        """Stop the server with SIGTERM (then SIGKILL) and give its exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(STOP_TIMEOUT)
        return self.process.returncode


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[str, Path], Server]]:
    """Run an example with its header's command, storing into a SQLite file; always stopped.

    The server runs from the repository root, as the commands say, and listens on 127.0.0.1.
    """
    pytest.importorskip("httpx")
    servers: list[Server] = []

    def start(name: str, database: Path) -> Server:
        port = free_port()
        command = server_command(header_line(example_file(name), "Run"), port)
        log = tmp_path / f"{name}.log"
        env = {**os.environ, updater_stats.STORAGE_ENV_VAR: f"sqlite:///{database}"}
        with log.open("wb") as output:
            process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
            )
        server = Server(process, f"http://127.0.0.1:{port}/stats", log)
        servers.append(server)
        server.wait_until_serving()
        return server

    yield start
    for server in servers:
        server.stop()
