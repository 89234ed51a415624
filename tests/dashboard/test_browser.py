"""A real browser against a real ``updater-stats serve --dashboard``: headless Chromium from
Debian, driven by Playwright. The screenshots it takes are docs/dashboard.md's."""

from __future__ import annotations

from pathlib import Path

import pytest
from scripts import dashboard_tour

pytest.importorskip("playwright.sync_api")
pytest.importorskip("uvicorn")
if not Path(dashboard_tour.CHROMIUM).exists():
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True
    )


@pytest.fixture(scope="module")
def found(tmp_path_factory: pytest.TempPathFactory) -> dashboard_tour.Findings:
    folder = tmp_path_factory.mktemp("browser")
    database = folder / "sample.sqlite3"
    dashboard_tour.write_sample(database, devices=400)
    with dashboard_tour.served(database, folder) as base:
        return dashboard_tour.tour(base, folder / "shots")


def test_every_page_opens_after_logging_in(found):
    assert set(found.pages) == {"apps", "app", "version", "devices", "device"}
    assert found.pages["apps"].endswith("/dashboard/")
    assert found.version_rows == 4  # 1.0.0, 1.1.0, 1.2.0, 1.2.1
    assert found.device_rows == 1  # the device searched for, typed in upper case
    assert found.timeline_rows > 0


def test_every_chart_is_drawn_with_data(found):
    kinds = {page: [chart["kind"] for chart in charts] for page, charts in found.charts.items()}
    assert kinds["app"] == [
        "adoption",
        "failure-rate",
        "installs",
        "funnel",
        "platforms",
        "plugins",
    ]
    assert kinds["version"] == ["failure-rate", "failures"]
    assert kinds["phone"] == kinds["app"]
    for page, charts in found.charts.items():
        for chart in charts:
            assert chart["width"] > 0, (page, chart)
            assert chart["height"] > 0, (page, chart)
            assert chart["points"] > 0, (page, chart)
            assert chart["marks"] > 0, (page, chart)
    # At phone width a chart still fills the screen's width, not more.
    assert all(chart["width"] <= 390 for chart in found.charts["phone"])


def test_the_window_and_platform_stay_in_the_url(found):
    (url,) = found.final_urls
    assert "days=7" in url
    assert "platform=ios" in url


def test_no_console_error_and_no_request_outside_the_server(found):
    assert found.console_errors == []
    assert found.outside_requests == []
    assert found.requests > 10


def test_the_screenshots_are_the_docs(found):
    names = sorted(path.name for path in found.shots)
    docs = Path(__file__).resolve().parents[2] / "docs"
    page = (docs / "dashboard.md").read_text(encoding="utf-8")
    for name in names:
        assert (docs / "img" / name).is_file(), name
        assert f"img/{name}" in page, name
    assert len(names) == 7
