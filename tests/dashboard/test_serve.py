"""``updater-stats serve --dashboard`` refuses to start without a token, before binding a port.

That it serves the dashboard next to the stats path is the browser test's job: it runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from updater_stats.cli import cli
from updater_stats.dashboard import TOKEN_ENV_VAR

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
