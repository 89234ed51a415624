"""A real browser's tour of the dashboard, and the screenshots in docs/dashboard.md.

``python -m scripts.dashboard_tour`` writes a simulated rollout to a SQLite file, runs
``updater-stats serve --dashboard`` on it, and has headless Chromium (Debian's ``chromium``,
driven by Playwright) log in and open every page, saving docs/img/dashboard-*.png. The
browser test runs the same `tour` and checks what it found.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from updater_stats import SQLiteBackend

from .sample_rollout import APP, rollout

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "img"
CHROMIUM = "/usr/bin/chromium"
#: The rollout ends today, so that the apps page's "last 24 h" and "last 7 d" show it too.
TODAY = dt.datetime.now(dt.timezone.utc).date()
START = dt.datetime.combine(TODAY - dt.timedelta(days=13), dt.time(), dt.timezone.utc)
#: The window the tour shows: the rollout's 14 days.
WINDOW = f"days=14&until={TODAY.isoformat()}"
TOKEN = "tour-token-0123456789abcdef"  # noqa: S105 - a throwaway server's token
BROWSER_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@attrs.define
class Findings:
    """What the browser saw on the way."""

    pages: dict[str, str] = attrs.Factory(dict)
    charts: dict[str, list[dict[str, Any]]] = attrs.Factory(dict)
    version_rows: int = 0
    device_rows: int = 0
    timeline_rows: int = 0
    console_errors: list[str] = attrs.Factory(list)
    outside_requests: list[str] = attrs.Factory(list)
    requests: int = 0
    shots: list[Path] = attrs.Factory(list)
    final_urls: list[str] = attrs.Factory(list)


def write_sample(path: Path, devices: int = 1500) -> None:
    """The simulated rollout (four releases, 1.2.0 a bad one) in a SQLite file."""
    backend = SQLiteBackend(path)
    events = sorted(rollout(devices, start=START, seed=6), key=lambda s: s.received_at)
    for n in range(0, len(events), 2000):
        backend.write(events[n : n + 2000])
    backend.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(database: Path, folder: Path) -> Iterator[str]:
    """``updater-stats serve --dashboard`` on *database*; yields its base URL."""
    port = _free_port()
    token_file = folder / "dashboard-token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPDATER_STATS_")}
    command = [
        sys.executable, "-m", "updater_stats", "serve", "--port", str(port),
        "--storage", f"sqlite:///{database}", "--dashboard",
        "--dashboard-token-file", str(token_file), "--log-level", "warning",
    ]  # fmt: skip
    with (folder / "serve.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)  # noqa: S603
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/ready", timeout=2) as answer:  # noqa: S310
                        if answer.status == 200:
                            break
                except OSError:
                    if time.monotonic() > deadline or process.poll() is not None:
                        raise RuntimeError(
                            "the server did not start:\n" + (folder / "serve.log").read_text()
                        ) from None
                    time.sleep(0.1)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)


def _charts(page: Any) -> list[dict[str, Any]]:
    found = []
    for chart in page.query_selector_all("svg.chart"):
        box = chart.bounding_box()
        found.append(
            {
                "kind": chart.get_attribute("data-chart"),
                "points": int(chart.get_attribute("data-points") or 0),
                "width": box["width"] if box else 0,
                "height": box["height"] if box else 0,
                "marks": len(chart.query_selector_all("rect.bar, path.step")),
            }
        )
    return found


def tour(base: str, shots: Path, *, executable: str = CHROMIUM) -> Findings:  # noqa: PLR0915
    """Log in, open each page, search a device, open its timeline; screenshots into *shots*."""
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - a test dependency

    found = Findings()
    shots.mkdir(parents=True, exist_ok=True)

    def shot(page: Any, name: str, *, full: bool = True) -> None:
        path = shots / f"dashboard-{name}.png"
        page.screenshot(path=str(path), full_page=full)
        found.shots.append(path)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.on(
                "console",
                lambda m: found.console_errors.append(m.text) if m.type == "error" else None,
            )
            page.on("pageerror", lambda error: found.console_errors.append(str(error)))

            def on_request(request: Any) -> None:
                found.requests += 1
                if not request.url.startswith(base + "/"):
                    found.outside_requests.append(request.url)

            page.on("request", on_request)

            page.goto(f"{base}/dashboard/login")
            shot(page, "login", full=False)
            page.fill("#token", TOKEN)
            with page.expect_navigation():
                page.click("form button[type=submit]")
            found.pages["apps"] = page.url
            shot(page, "apps", full=False)
            with page.expect_navigation():
                page.click(f"#apps a:text-is('{APP}')")
            page.goto(f"{page.url}&{WINDOW}&version=1.2.1")
            found.pages["app"] = page.url
            found.version_rows = len(page.query_selector_all("#versions tbody tr[data-version]"))
            found.charts["app"] = _charts(page)
            shot(page, "app")

            page.select_option("select[name=days]", "7")
            page.select_option("select[name=platform]", "ios")
            with page.expect_navigation():
                page.click("form.window button[type=submit]")
            found.final_urls.append(page.url)

            page.goto(f"{base}/dashboard/version?app={APP}&version=1.2.0&{WINDOW}")
            found.pages["version"] = page.url
            found.charts["version"] = _charts(page)
            shot(page, "version")
            device_link = page.query_selector("#failing a")
            device_id = device_link.inner_text() if device_link else ""

            page.goto(f"{base}/dashboard/devices?app={APP}")
            page.fill("#q", device_id.upper())
            with page.expect_navigation():
                page.click("form.search button[type=submit]")
            found.pages["devices"] = page.url
            found.device_rows = len(page.query_selector_all("#devices tbody tr"))
            shot(page, "devices", full=False)
            with page.expect_navigation():
                page.click("#devices a")
            found.pages["device"] = page.url
            found.timeline_rows = len(page.query_selector_all("#timeline tbody tr"))
            shot(page, "device")

            phone = browser.new_page(viewport={"width": 390, "height": 844})
            phone.on(
                "console",
                lambda m: found.console_errors.append(m.text) if m.type == "error" else None,
            )
            phone.on("request", on_request)
            phone.context.add_cookies(page.context.cookies())
            phone.goto(f"{base}/dashboard/app?app={APP}&{WINDOW}")
            found.charts["phone"] = _charts(phone)
            shot(phone, "phone", full=False)
        finally:
            browser.close()
    return found


def main() -> None:
    """Regenerate docs/img/dashboard-*.png."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        database = folder / "sample.sqlite3"
        write_sample(database)
        with served(database, folder) as base:
            found = tour(base, SHOTS)
    for path in found.shots:
        sys.stdout.write(f"wrote {path.relative_to(ROOT)}\n")
    if found.console_errors or found.outside_requests:
        sys.stdout.write(f"problems: {found.console_errors} {found.outside_requests}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
