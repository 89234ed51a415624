from __future__ import annotations

import pytest

from updater_stats import (
    Action,
    counts_as_failure,
    download_fail_counts,
    download_fail_means_no_update,
)

# Section 4 of the stats protocol, copied independently of the enum.
SPEC_ACTIONS = """
ping delete reset set get set_fail update_fail download_fail windows_path_fail canonical_path_fail
directory_path_fail unzip_fail low_mem_fail download_0 download_10 download_20 download_30 download_40
download_50 download_60 download_70 download_80 download_90 download_complete download_manifest_start
download_manifest_complete download_zip_start download_zip_complete download_manifest_file_fail
download_manifest_checksum_fail download_manifest_brotli_fail finish_download_fail manifest_path_fail
decrypt_fail checksum_required insufficient_disk_space app_moved_to_foreground app_moved_to_background
app_launch_start app_launch_ready app_launch_timeout uninstall needPlanUpgrade missingBundle noNew
disablePlatformIos disablePlatformAndroid disableAutoUpdateToMajor cannotUpdateViaPrivateChannel
disableAutoUpdateToMinor disableAutoUpdateToPatch channelMisconfigured disableAutoUpdateMetadata
disableAutoUpdateUnderNative disableDevBuild disableProdBuild disableEmulator disableDevice
cannotGetBundle checksum_fail NoChannelOrOverride setChannel getChannel rateLimited rate_limit_reached
disableAutoUpdate keyMismatch InvalidIp blocked_by_server_url backend_refusal disablePlatformElectron
customIdBlocked app_crash app_crash_native app_anr app_killed_low_memory
app_killed_excessive_resource_usage app_initialization_failure app_memory_warning
webview_javascript_error webview_unhandled_rejection webview_resource_error
webview_security_policy_violation webview_unclean_restart webview_render_process_gone
webview_content_process_terminated webview_dom_content_loaded webview_page_loaded app_nav set_next
os_version_changed native_app_version_changed
""".split()


def test_enum_holds_exactly_the_92_wire_values():
    assert len(SPEC_ACTIONS) == 92
    assert [a.value for a in Action] == SPEC_ACTIONS


def test_members_are_their_wire_strings():
    assert Action.SET == "set"
    assert Action("needPlanUpgrade") is Action.NEED_PLAN_UPGRADE
    assert str(Action.NO_CHANNEL_OR_OVERRIDE) == "NoChannelOrOverride"
    assert f"{Action.DOWNLOAD_10}" == "download_10"


def test_parse_is_case_sensitive_and_tolerates_unknown_actions():
    assert Action.parse("InvalidIp") is Action.INVALID_IP
    assert Action.parse("invalidip") is None
    assert Action.parse("app_nav2") is None


FAILURES = {
    "set_fail", "update_fail", "download_fail", "windows_path_fail", "canonical_path_fail",
    "directory_path_fail", "unzip_fail", "low_mem_fail", "download_manifest_file_fail",
    "download_manifest_checksum_fail", "download_manifest_brotli_fail", "finish_download_fail",
    "manifest_path_fail", "decrypt_fail", "checksum_fail", "app_crash", "app_crash_native",
    "app_anr", "app_killed_low_memory", "app_killed_excessive_resource_usage",
    "app_initialization_failure", "webview_javascript_error", "webview_unhandled_rejection",
    "webview_resource_error", "webview_security_policy_violation", "webview_unclean_restart",
    "webview_render_process_gone", "webview_content_process_terminated",
}  # fmt: skip


def test_failures_follow_the_protocol():
    assert {a.value for a in Action if a.is_failure} == FAILURES
    assert not Action.CHECKSUM_REQUIRED.is_failure
    assert not Action.WEBVIEW_PAGE_LOADED.is_failure
    assert not Action.WEBVIEW_DOM_CONTENT_LOADED.is_failure


def test_target_version_actions():
    expected = {a for a in SPEC_ACTIONS if a.startswith("download_")} | {
        "set_next", "delete", "checksum_required", "insufficient_disk_space", "set_fail",
        "unzip_fail", "decrypt_fail", "checksum_fail", "finish_download_fail",
        "manifest_path_fail", "windows_path_fail", "canonical_path_fail", "directory_path_fail",
        "low_mem_fail",
    }  # fmt: skip
    assert {a.value for a in Action if a.is_target_version} == expected
    assert not Action.SET.is_target_version


def test_running_version_actions_are_the_rest_but_rollbacks_and_uninstall():
    running = {a.value for a in Action if a.runs_version}
    target = {a.value for a in Action if a.is_target_version}
    assert running == set(SPEC_ACTIONS) - target - {"update_fail", "uninstall"}
    assert {"set", "reset", "app_crash", "app_moved_to_foreground", "get", "noNew"} <= running
    assert not running & {"unzip_fail", "update_fail", "set_fail", "download_fail", "set_next"}


def test_server_side_actions_are_the_camel_case_codes_and_the_server_verbs():
    server = {a.value for a in Action if a.is_server_side}
    assert {"get", "ping", "uninstall", "setChannel", "getChannel", "noNew", "InvalidIp"} <= server
    assert all(v in {"get", "ping", "uninstall"} or v != v.lower() for v in server)
    assert "set" not in server
    assert "blocked_by_server_url" not in server
    assert len(server) == 29


def test_download_progress_and_percent():
    assert [a.download_percent for a in Action if a.download_percent is not None] == [
        0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100,
    ]  # fmt: skip
    assert Action.DOWNLOAD_ZIP_START.is_download_progress
    assert Action.DOWNLOAD_ZIP_START.is_download_start
    assert not Action.DOWNLOAD_10.is_download_start
    assert not Action.DOWNLOAD_FAIL.is_download_progress
    assert Action.DOWNLOAD_ZIP_COMPLETE.download_percent is None


def test_funnel_rollback_install():
    assert Action.SET.is_install
    assert not Action.SET_NEXT.is_install
    assert {a for a in Action if a.is_rollback} == {Action.UPDATE_FAIL, Action.RESET}
    assert Action.APP_LAUNCH_READY.is_funnel_step
    assert Action.APP_MOVED_TO_FOREGROUND.is_funnel_step
    assert not Action.APP_MOVED_TO_BACKGROUND.is_funnel_step


@pytest.mark.parametrize(
    ("plugin_version", "means_no_update"),
    [
        ("7.16.9", True),
        ("7.17.0", False),
        ("8.42.1", False),
        ("6.14.24", True),
        ("6.14.25", False),
        ("6.15.0", False),
        ("5.9.0", True),
        ("4.0.0", True),
        ("v7.1.0", True),
        ("7.17.0-beta.1", True),  # a pre-release is older than its release
        ("7.17.0-rc.2+build.5", True),
        ("7.17.0+build.5", False),
        ("6.14.25-beta", True),
        ("7.17.1-beta", False),
    ],
)
def test_old_download_fail_quirk(plugin_version, means_no_update):
    assert download_fail_means_no_update(plugin_version) is means_no_update
    assert counts_as_failure("download_fail", plugin_version) is not means_no_update
    assert download_fail_counts(plugin_version) is not means_no_update


@pytest.mark.parametrize("plugin_version", ["not-a-version", "", "dev-build", "7.17", None])
def test_download_fail_from_an_unreadable_plugin_version_is_not_a_failure(plugin_version):
    assert not download_fail_means_no_update(plugin_version)
    assert not download_fail_counts(plugin_version)
    assert not counts_as_failure("download_fail", plugin_version)
    assert counts_as_failure("unzip_fail", plugin_version)


def test_counts_as_failure_for_other_actions_ignores_the_plugin_version():
    assert counts_as_failure("set_fail", "5.0.0")
    assert not counts_as_failure("set", "8.0.0")
    assert not counts_as_failure("brand_new_fail", "9.0.0")  # unknown: not a failure yet
