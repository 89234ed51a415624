"""The `action` vocabulary of capacitor-updater and what each action means.

Every classification lives here, once, so reports never test action strings
by hand. The sets follow section 4 of the stats protocol to the letter.
"""

from __future__ import annotations

import enum

from ._versions import parse_version


class Action(str, enum.Enum):
    """Every `action` value known today, spelled exactly as on the wire.

    New plugin releases add actions; an event whose action is not listed here
    is still accepted and stored with its raw string (see
    `AppInfos.known_action`).
    """

    PING = "ping"
    DELETE = "delete"
    RESET = "reset"
    SET = "set"
    GET = "get"
    SET_FAIL = "set_fail"
    UPDATE_FAIL = "update_fail"
    DOWNLOAD_FAIL = "download_fail"
    WINDOWS_PATH_FAIL = "windows_path_fail"
    CANONICAL_PATH_FAIL = "canonical_path_fail"
    DIRECTORY_PATH_FAIL = "directory_path_fail"
    UNZIP_FAIL = "unzip_fail"
    LOW_MEM_FAIL = "low_mem_fail"
    DOWNLOAD_0 = "download_0"
    DOWNLOAD_10 = "download_10"
    DOWNLOAD_20 = "download_20"
    DOWNLOAD_30 = "download_30"
    DOWNLOAD_40 = "download_40"
    DOWNLOAD_50 = "download_50"
    DOWNLOAD_60 = "download_60"
    DOWNLOAD_70 = "download_70"
    DOWNLOAD_80 = "download_80"
    DOWNLOAD_90 = "download_90"
    DOWNLOAD_COMPLETE = "download_complete"
    DOWNLOAD_MANIFEST_START = "download_manifest_start"
    DOWNLOAD_MANIFEST_COMPLETE = "download_manifest_complete"
    DOWNLOAD_ZIP_START = "download_zip_start"
    DOWNLOAD_ZIP_COMPLETE = "download_zip_complete"
    DOWNLOAD_MANIFEST_FILE_FAIL = "download_manifest_file_fail"
    DOWNLOAD_MANIFEST_CHECKSUM_FAIL = "download_manifest_checksum_fail"
    DOWNLOAD_MANIFEST_BROTLI_FAIL = "download_manifest_brotli_fail"
    FINISH_DOWNLOAD_FAIL = "finish_download_fail"
    MANIFEST_PATH_FAIL = "manifest_path_fail"
    DECRYPT_FAIL = "decrypt_fail"
    CHECKSUM_REQUIRED = "checksum_required"
    INSUFFICIENT_DISK_SPACE = "insufficient_disk_space"
    APP_MOVED_TO_FOREGROUND = "app_moved_to_foreground"
    APP_MOVED_TO_BACKGROUND = "app_moved_to_background"
    APP_LAUNCH_START = "app_launch_start"
    APP_LAUNCH_READY = "app_launch_ready"
    APP_LAUNCH_TIMEOUT = "app_launch_timeout"
    UNINSTALL = "uninstall"
    NEED_PLAN_UPGRADE = "needPlanUpgrade"
    MISSING_BUNDLE = "missingBundle"
    NO_NEW = "noNew"
    DISABLE_PLATFORM_IOS = "disablePlatformIos"
    DISABLE_PLATFORM_ANDROID = "disablePlatformAndroid"
    DISABLE_AUTO_UPDATE_TO_MAJOR = "disableAutoUpdateToMajor"
    CANNOT_UPDATE_VIA_PRIVATE_CHANNEL = "cannotUpdateViaPrivateChannel"
    DISABLE_AUTO_UPDATE_TO_MINOR = "disableAutoUpdateToMinor"
    DISABLE_AUTO_UPDATE_TO_PATCH = "disableAutoUpdateToPatch"
    CHANNEL_MISCONFIGURED = "channelMisconfigured"
    DISABLE_AUTO_UPDATE_METADATA = "disableAutoUpdateMetadata"
    DISABLE_AUTO_UPDATE_UNDER_NATIVE = "disableAutoUpdateUnderNative"
    DISABLE_DEV_BUILD = "disableDevBuild"
    DISABLE_PROD_BUILD = "disableProdBuild"
    DISABLE_EMULATOR = "disableEmulator"
    DISABLE_DEVICE = "disableDevice"
    CANNOT_GET_BUNDLE = "cannotGetBundle"
    CHECKSUM_FAIL = "checksum_fail"
    NO_CHANNEL_OR_OVERRIDE = "NoChannelOrOverride"
    SET_CHANNEL = "setChannel"
    GET_CHANNEL = "getChannel"
    RATE_LIMITED = "rateLimited"
    RATE_LIMIT_REACHED = "rate_limit_reached"
    DISABLE_AUTO_UPDATE = "disableAutoUpdate"
    KEY_MISMATCH = "keyMismatch"
    INVALID_IP = "InvalidIp"
    BLOCKED_BY_SERVER_URL = "blocked_by_server_url"
    BACKEND_REFUSAL = "backend_refusal"
    DISABLE_PLATFORM_ELECTRON = "disablePlatformElectron"
    CUSTOM_ID_BLOCKED = "customIdBlocked"
    APP_CRASH = "app_crash"
    APP_CRASH_NATIVE = "app_crash_native"
    APP_ANR = "app_anr"
    APP_KILLED_LOW_MEMORY = "app_killed_low_memory"
    APP_KILLED_EXCESSIVE_RESOURCE_USAGE = "app_killed_excessive_resource_usage"
    APP_INITIALIZATION_FAILURE = "app_initialization_failure"
    APP_MEMORY_WARNING = "app_memory_warning"
    WEBVIEW_JAVASCRIPT_ERROR = "webview_javascript_error"
    WEBVIEW_UNHANDLED_REJECTION = "webview_unhandled_rejection"
    WEBVIEW_RESOURCE_ERROR = "webview_resource_error"
    WEBVIEW_SECURITY_POLICY_VIOLATION = "webview_security_policy_violation"
    WEBVIEW_UNCLEAN_RESTART = "webview_unclean_restart"
    WEBVIEW_RENDER_PROCESS_GONE = "webview_render_process_gone"
    WEBVIEW_CONTENT_PROCESS_TERMINATED = "webview_content_process_terminated"
    WEBVIEW_DOM_CONTENT_LOADED = "webview_dom_content_loaded"
    WEBVIEW_PAGE_LOADED = "webview_page_loaded"
    APP_NAV = "app_nav"
    SET_NEXT = "set_next"
    OS_VERSION_CHANGED = "os_version_changed"
    NATIVE_APP_VERSION_CHANGED = "native_app_version_changed"

    def __str__(self) -> str:
        # The wire value, not "Action.SET", wherever an action is printed.
        return self.value

    @classmethod
    def parse(cls, raw: str) -> Action | None:
        """The member spelled exactly *raw*, or `None` for an action not known yet."""
        return _BY_VALUE.get(raw)

    @property
    def is_failure(self) -> bool:
        """A failure of the update or of the running bundle (section 4).

        `download_fail` from plugins that used it for "no update available"
        is not a failure: use `counts_as_failure` with the plugin version for
        that distinction.
        """
        return self in FAILURE_ACTIONS

    @property
    def is_rollback(self) -> bool:
        """The device left a bundle: `update_fail` (rolled back) or `reset` (back to builtin)."""
        return self in ROLLBACK_ACTIONS

    @property
    def is_install(self) -> bool:
        """A bundle became the active one (`set`)."""
        return self is Action.SET

    @property
    def is_download_progress(self) -> bool:
        """A step of a download in progress, from its start to `download_complete`."""
        return self in DOWNLOAD_PROGRESS_ACTIONS

    @property
    def is_download_start(self) -> bool:
        """The first event of a download on current plugins."""
        return self in DOWNLOAD_START_ACTIONS

    @property
    def download_percent(self) -> int | None:
        """How far a download got: 0 to 90 for `download_N`, 100 for `download_complete`."""
        return _DOWNLOAD_PERCENT.get(self)

    @property
    def is_target_version(self) -> bool:
        """`version_name` is a bundle being downloaded, unpacked, staged, activated or deleted.

        The device does not run it (yet): see `runs_version`.
        """
        return self in TARGET_VERSION_ACTIONS

    @property
    def runs_version(self) -> bool:
        """After this event the device runs its `version_name` (see `RUNNING_VERSION_ACTIONS`)."""
        return self in RUNNING_VERSION_ACTIONS

    @property
    def is_server_side(self) -> bool:
        """Written by an update server about a device rather than sent by the device."""
        return self in SERVER_SIDE_ACTIONS

    @property
    def is_funnel_step(self) -> bool:
        """Part of the update funnel: download, `set`, then the first launch of the new bundle."""
        return self in FUNNEL_ACTIONS


_BY_VALUE: dict[str, Action] = {member.value: member for member in Action}

_WEBVIEW_FAILURES = frozenset(
    {
        Action.WEBVIEW_JAVASCRIPT_ERROR,
        Action.WEBVIEW_UNHANDLED_REJECTION,
        Action.WEBVIEW_RESOURCE_ERROR,
        Action.WEBVIEW_SECURITY_POLICY_VIOLATION,
        Action.WEBVIEW_UNCLEAN_RESTART,
        Action.WEBVIEW_RENDER_PROCESS_GONE,
        Action.WEBVIEW_CONTENT_PROCESS_TERMINATED,
    }
)

#: `*_fail`, crashes, ANRs, kills, initialisation failures and WebView errors.
FAILURE_ACTIONS: frozenset[Action] = frozenset(
    {a for a in Action if a.value.endswith("_fail")}
    | {a for a in Action if a.value.startswith(("app_crash", "app_killed_"))}
    | {Action.APP_ANR, Action.APP_INITIALIZATION_FAILURE}
    | _WEBVIEW_FAILURES
)

ROLLBACK_ACTIONS: frozenset[Action] = frozenset({Action.UPDATE_FAIL, Action.RESET})

DOWNLOAD_START_ACTIONS: frozenset[Action] = frozenset(
    {Action.DOWNLOAD_0, Action.DOWNLOAD_ZIP_START, Action.DOWNLOAD_MANIFEST_START}
)

_DOWNLOAD_PERCENT: dict[Action, int] = {
    **{Action(f"download_{p}"): p for p in range(0, 100, 10)},
    Action.DOWNLOAD_COMPLETE: 100,
}

DOWNLOAD_PROGRESS_ACTIONS: frozenset[Action] = frozenset(
    set(_DOWNLOAD_PERCENT)
    | DOWNLOAD_START_ACTIONS
    | {Action.DOWNLOAD_ZIP_COMPLETE, Action.DOWNLOAD_MANIFEST_COMPLETE}
)

#: `version_name` is a bundle the device does not run: every `download_*`; the failures of
#: fetching, checking, unpacking, decrypting or activating it; `set_next`, `delete`,
#: `checksum_required`, `insufficient_disk_space`.
TARGET_VERSION_ACTIONS: frozenset[Action] = frozenset(
    {a for a in Action if a.value.startswith("download_")}
    | {
        Action.SET_NEXT,
        Action.DELETE,
        Action.CHECKSUM_REQUIRED,
        Action.INSUFFICIENT_DISK_SPACE,
        Action.SET_FAIL,
        Action.UNZIP_FAIL,
        Action.DECRYPT_FAIL,
        Action.CHECKSUM_FAIL,
        Action.FINISH_DOWNLOAD_FAIL,
        Action.MANIFEST_PATH_FAIL,
        Action.WINDOWS_PATH_FAIL,
        Action.CANONICAL_PATH_FAIL,
        Action.DIRECTORY_PATH_FAIL,
        Action.LOW_MEM_FAIL,
    }
)

#: Neither target nor running: `update_fail` names the bundle the device rolled back from,
#: `uninstall` a bundle no longer on the device.
LEFT_VERSION_ACTIONS: frozenset[Action] = frozenset({Action.UPDATE_FAIL, Action.UNINSTALL})

#: After these the device runs `version_name`: every known action that is neither a
#: target-bundle action nor `update_fail` / `uninstall`. `reset` names the bundle it went back
#: to (`builtin`); update-server codes name the bundle the device asked with.
RUNNING_VERSION_ACTIONS: frozenset[Action] = frozenset(
    set(Action) - TARGET_VERSION_ACTIONS - LEFT_VERSION_ACTIONS
)

#: The camelCase refusal codes plus `get`, `ping`, `uninstall`, `setChannel`, `getChannel`.
SERVER_SIDE_ACTIONS: frozenset[Action] = frozenset(
    {a for a in Action if a.value != a.value.lower()} | {Action.GET, Action.PING, Action.UNINSTALL}
)

FUNNEL_ACTIONS: frozenset[Action] = frozenset(
    DOWNLOAD_PROGRESS_ACTIONS
    | {Action.SET, Action.APP_MOVED_TO_FOREGROUND, Action.APP_LAUNCH_READY}
)

#: `download_fail` meant "no update" before these plugin versions (by major version).
_NO_UPDATE_BEFORE: dict[int, tuple[int, int, int]] = {6: (6, 14, 25)}
_NO_UPDATE_BEFORE_OTHERS = (7, 17, 0)


def download_fail_means_no_update(plugin_version: str | None) -> bool:
    """Whether this plugin sent `download_fail` when there simply was no update.

    Plugins older than 7.17.0 (6.x older than 6.14.25) did, compared by
    semantic-versioning precedence: ``7.17.0-beta.1`` is older than 7.17.0.
    `False` for a version that cannot be read; `download_fail_counts` says
    what to do with those.
    """
    precedence = parse_version(plugin_version)
    if precedence is None:
        return False
    before = _NO_UPDATE_BEFORE.get(precedence[0], _NO_UPDATE_BEFORE_OTHERS)
    # A pre-release of the first fixed version is still older than it.
    return precedence < (*before, 1, ())


def download_fail_counts(plugin_version: str | None) -> bool:
    """Whether a `download_fail` from this plugin is a failure.

    Only when the plugin version can be read (``MAJOR.MINOR.PATCH``, see
    `updater_stats._versions`) and is not one that meant "no update": from a
    plugin whose version cannot be read (``dev-build``, ``""``, absent) nobody
    can tell, and the event is not counted, as the hosted service does not.
    """
    return parse_version(plugin_version) is not None and not download_fail_means_no_update(
        plugin_version
    )


def counts_as_failure(action: str, plugin_version: str | None) -> bool:
    """Whether an event with this raw *action*, from this plugin, is a failure.

    Unknown actions are not failures until the vocabulary says so; `download_fail`
    is one only when `download_fail_counts` says so.
    """
    known = _BY_VALUE.get(action)
    if known is None or not known.is_failure:
        return False
    if known is Action.DOWNLOAD_FAIL:
        return download_fail_counts(plugin_version)
    return True
