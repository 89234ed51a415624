"""Version precedence: the one order every report uses for versions."""

from __future__ import annotations

import pytest

from updater_stats._versions import parse_version, version_order_key

OLDEST_TO_NEWEST = [
    "",
    "Builtin",
    "builtin",
    "dev-build",
    "0.9.0",
    "1.0.0-1",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "1.0.0+build.9",
    "1.0.0:main.js",
    "v1.0.0",
    "1.9.0",
    "1.10.0",
    "10.0.0",
]


def test_semver_precedence_then_code_point_for_equals():
    # The semver.org example of precedence, non-versions first, equals by code point.
    shuffled = sorted(OLDEST_TO_NEWEST, key=lambda name: name[::-1])
    assert sorted(shuffled, key=version_order_key) == OLDEST_TO_NEWEST


@pytest.mark.parametrize(
    "text", ["1.0", "1.0.0.0", "1.0.0-", "1.0.0-beta..1", "1.0.0+", " 1.0.0", "x1.0.0", None]
)
def test_what_is_not_a_version(text):
    assert parse_version(text) is None


@pytest.mark.parametrize(
    "text",
    ["\u0661.\u0662.\u0663", "\uff18.\uff14\uff12.\uff10", "7.\u0661\u0667.0", "1.0.0\u00b2"],
)
def test_versions_are_written_in_ascii_digits(text):
    # Python's \d matches any script's digits: a name in Arabic-Indic or full-width digits is
    # free text, ordered with the other names that are not versions.
    assert parse_version(text) is None
    assert version_order_key(text) < version_order_key("0.0.0")


def test_a_release_ranks_above_its_pre_releases_and_build_is_ignored():
    assert parse_version("7.17.0-beta.1") < parse_version("7.17.0")
    assert parse_version("7.17.0+build") == parse_version("7.17.0")
    assert parse_version("V7.17.0") == parse_version("7.17.0")
