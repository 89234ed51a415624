"""The validator: decoded JSON to `AppInfos`, one rule per wire field, built once per `Policy`.

This is the one place that says what an event must be. Only a value of the
wrong JSON type, or a missing or invalid identifying field (``app_id``,
``device_id``, ``action``, ``version_name``) makes an event invalid
(protocol, section 3); every problem is worded as ``"msg @ $.path"``, all of
an event's problems at once. Lengths never do: a value over its cap is kept
here and cut when the event is recorded for storage (`_record`), which the
validator tells by a flag, so that the usual event costs no second look.

Values are checked strictly, never coerced: ``"false"`` is not a boolean and
``1`` is not a string. A device that sends the wrong type has a bug worth
seeing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final, NamedTuple

from ._actions import Action
from ._models import REQUIRED_FIELDS, WIRE_KEYS, AppInfos
from ._policy import Policy
from .exceptions import InvalidEventError

__all__ = ["Validator", "json_type", "parse_event"]

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Android package names and iOS bundle ids: two or more dot-separated segments.
_REVERSE_DOMAIN = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+")
_INT64_MAX = 2**63 - 1

# The kinds of wire value a rule checks.
_TEXT: Final = 0
_BOOL: Final = 1
_TIMESTAMP: Final = 2
_METADATA: Final = 3

#: A check of an identifying text value: a problem to report, or `None`.
IdCheck = Callable[[str], "str | None"]


class _Rule(NamedTuple):
    """What one wire field must be (a tuple: the validator's loop unpacks it at once).

    Attributes:
        attribute: The `AppInfos` attribute it fills.
        kind: `_TEXT`, `_BOOL`, `_TIMESTAMP` or `_METADATA`.
        cap: For text, the characters stored; longer values are cut when recorded.
        identifying: For text, part of the event's identity: it must be valid
            Unicode (a lone surrogate makes the event invalid instead of being
            replaced when recorded).
        check: For text, the policy's check of the value (UUID, allow-list, ...).
    """

    attribute: str
    kind: int
    cap: int
    identifying: bool
    check: IdCheck | None


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def has_lone_surrogate(text: str) -> bool:
    """Whether *text* holds a lone surrogate, which no UTF-8 store can hold as it is."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _printable(key: str) -> str:
    """A client-chosen key made safe to echo in an error: short, and encodable as UTF-8."""
    return key[:64].encode("utf-8", "backslashreplace").decode("utf-8")


def _device_id_check(policy: Policy) -> IdCheck | None:
    if not policy.require_uuid_device_id:
        return None
    return lambda value: None if _UUID.fullmatch(value) else "must be a UUID"


def _app_id_check(policy: Policy) -> IdCheck | None:
    allowed = policy.allowed_app_ids
    reverse_domain = policy.require_reverse_domain_app_id
    if allowed is None and not reverse_domain:
        return None

    def check(value: str) -> str | None:
        if reverse_domain and not _REVERSE_DOMAIN.fullmatch(value):
            return "must be a reverse-domain id like com.example.app"
        if allowed is not None and value not in allowed:
            return "is not an app this endpoint accepts"
        return None

    return check


def _action_check(policy: Policy) -> IdCheck | None:
    if policy.accept_unknown_actions:
        return None
    return lambda value: None if Action.parse(value) else "is not a known action"


def _remembered(check: IdCheck | None) -> IdCheck | None:
    """*check*, remembering its recent answers (bounded, thread-safe).

    One device sends the same ids in every event of its batch: the same regular
    expression need not run 200 times.
    """
    return None if check is None else functools.lru_cache(maxsize=1024)(check)


def _rules(policy: Policy) -> dict[str, _Rule]:
    """The rule of every wire field, by wire key."""
    checks = {
        "app_id": _remembered(_app_id_check(policy)),
        "device_id": _remembered(_device_id_check(policy)),
        "action": _remembered(_action_check(policy)),
    }
    special = {
        "is_prod": _BOOL,
        "is_emulator": _BOOL,
        "timestamp": _TIMESTAMP,
        "metadata": _METADATA,
    }
    return {
        key: _Rule(
            attribute,
            special.get(attribute, _TEXT),
            cap=policy.max_length(key),
            identifying=attribute in REQUIRED_FIELDS,
            check=checks.get(key),
        )
        for attribute, key in WIRE_KEYS.items()
    }


class Validator:
    """The one validator of wire events, built once from a `Policy`.

    `parse` turns one decoded JSON event into an `AppInfos`, or raises
    `InvalidEventError` listing every problem as ``"msg @ $.path"``. A
    `Collector` builds one for its policy; build your own to check events
    outside a collector.

    Values over the policy's caps are returned whole: caps are applied when
    an event is recorded for storage, where the event notes what was cut.
    """

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy or Policy()
        self._rules = _rules(self.policy)
        # The table, arranged for the loops of `check`: each kind of rule in one list, in
        # wire-table order, so that a field is looked up in the event by its rule, not the
        # rule by the event's field (a dict lookup and a dispatch less per field).
        self._known = frozenset(self._rules)
        self._text = [
            (key, rule.attribute, rule.cap, rule.check, rule)
            for key, rule in self._rules.items()
            if rule.kind == _TEXT
        ]
        self._other = [
            (key, rule.attribute, rule.kind, rule)
            for key, rule in self._rules.items()
            if rule.kind != _TEXT
        ]
        self._order = {key: index for index, key in enumerate(self._rules)}
        # Attribute names, which are also their wire keys.
        self._required = REQUIRED_FIELDS
        self._required_set = frozenset(REQUIRED_FIELDS)

    def __repr__(self) -> str:
        return f"Validator({self.policy!r})"

    def parse(self, data: object) -> AppInfos:
        """One decoded JSON event as an `AppInfos`.

        Raises:
            InvalidEventError: with every problem of the event.
        """
        outcome = self.check(data)
        if isinstance(outcome, InvalidEventError):
            raise outcome
        return outcome[0]

    # Two loops over the table, the usual value settled inline: the hot path.
    def check(  # noqa: C901, PLR0912
        self, data: object, root: str = "$"
    ) -> tuple[AppInfos, bool] | InvalidEventError:
        """One decoded JSON value to an event, or the error that lists its problems.

        Returned rather than raised: a batch collects one per bad item. With the
        event comes whether a value is over its cap or not storable as it is
        (a lone surrogate in text that does not identify the event): the record
        step then cuts or mends it, and notes which.
        """
        if type(data) is not dict:
            return InvalidEventError(
                [f"an event must be a JSON object, not {json_type(data)} @ {root}"], []
            )
        values: dict[str, Any] = {}
        problems: list[tuple[str, str, str]] = []  # (wire key, path, message)
        oversized = False
        get = data.get
        unusual: list[tuple[_Rule, str, Any]] = []  # any other value, settled by `_field`
        for key, attribute, cap, check, rule in self._text:
            value = get(key)
            if value is None:
                continue  # absent, or null, which means absent (protocol, section 3)
            # The usual value is settled here: short ASCII text, nothing to cut or mend.
            if type(value) is str and len(value) <= cap and value.isascii():
                problem = None if check is None else check(value)
                if problem is None:
                    values[attribute] = value
                else:
                    problems.append((key, f"{root}.{key}", problem))
            else:
                unusual.append((rule, key, value))
        for key, attribute, kind, rule in self._other:
            value = get(key)
            if value is None:
                continue
            if (kind == _BOOL and (value is True or value is False)) or (
                kind == _TIMESTAMP and type(value) is int and 0 <= value <= _INT64_MAX
            ):
                values[attribute] = value
            else:
                unusual.append((rule, key, value))
        for rule, key, value in unusual:
            checked, flagged, found = self._field(rule, key, value, root)
            if found:
                problems.extend(found)
            else:
                values[rule.attribute] = checked
                oversized = oversized or flagged
        # Fields the protocol does not name: kept as sent (section 3).
        extras = (
            None
            if self._known.issuperset(data)
            else {key: value for key, value in data.items() if key not in self._known}
        )
        if not values.keys() >= self._required_set:
            for key in self._required:
                if key not in values and not any(found[0] == key for found in problems):
                    problems.append((key, f"{root}.{key}", "required field missing"))
        if problems:
            # In the order of the wire table, whichever loop found them.
            order = self._order
            problems.sort(key=lambda found: order.get(found[0], len(order)))
            return _error(problems)
        if extras is not None:
            oversized = self._extras_oversized(extras) or oversized
            values["extras"] = extras
        values["device_id"] = values["device_id"].lower()
        return AppInfos(**values), oversized

    def _field(  # noqa: C901 - one branch per kind of value
        self, rule: _Rule, key: str, value: Any, root: str
    ) -> tuple[Any, bool, list[tuple[str, str, str]]]:
        """Any value but short ASCII text: the value, whether to cut or mend it, its problems."""
        path = f"{root}.{key}"
        kind = rule.kind
        if kind == _METADATA:
            return self._metadata(value, path)
        problem: str | None = None
        oversized = False
        if kind == _BOOL:
            if value is not True and value is not False:
                problem = f"must be true or false, not {json_type(value)}"
        elif kind == _TIMESTAMP:
            if type(value) is not int:
                problem = f"must be an integer (epoch milliseconds), not {json_type(value)}"
            elif not 0 <= value <= _INT64_MAX:
                problem = f"must be between 0 and {_INT64_MAX}"
        elif type(value) is not str:
            problem = f"must be a string, not {json_type(value)}"
        elif has_lone_surrogate(value):
            if rule.identifying:
                problem = "must be valid Unicode text (it holds a lone surrogate)"
            oversized = True  # mended when recorded
        else:
            oversized = len(value) > rule.cap
        if problem is None and rule.check is not None:
            problem = rule.check(value)
        return value, oversized, [] if problem is None else [(key, path, problem)]

    def check_all(
        self, items: Iterable[object]
    ) -> Iterator[tuple[AppInfos, bool] | InvalidEventError]:
        """`check` for each item of a batch, error paths as ``$[index].field``."""
        check = self.check
        for index, data in enumerate(items):
            yield check(data, f"$[{index}]")

    def _metadata(
        self, value: Any, path: str
    ) -> tuple[dict[str, str], bool, list[tuple[str, str, str]]]:
        """``metadata`` checked: an object of strings, whose ``null`` values mean absent."""
        if type(value) is not dict:
            message = f"must be an object of strings, not {json_type(value)}"
            return {}, False, [("metadata", path, message)]
        policy = self.policy
        key_cap, value_cap = policy.max_metadata_key_length, policy.max_metadata_value_length
        oversized = len(value) > policy.max_metadata_keys
        problems: list[tuple[str, str, str]] = []
        nulls = False
        for key, item in value.items():
            if type(item) is not str:
                if item is None:
                    nulls = True
                else:
                    problems.append(
                        (
                            "metadata",
                            f"{path}.{_printable(key)}",
                            f"must be a string, not {json_type(item)}",
                        )
                    )
            elif not oversized and (
                len(key) > key_cap
                or len(item) > value_cap
                or (
                    not (key.isascii() and item.isascii())
                    and (has_lone_surrogate(key) or has_lone_surrogate(item))
                )
            ):
                oversized = True
        if nulls:
            value = {key: item for key, item in value.items() if item is not None}
        return value, oversized, problems

    def _extras_oversized(self, extras: Mapping[str, Any]) -> bool:
        """Whether the unknown fields are over their caps or hold text no store keeps as it is."""
        policy = self.policy
        if len(extras) > policy.max_extra_fields:
            return True
        return any(
            has_lone_surrogate(key) or _deep_or_unstorable(value, policy.max_extra_depth)
            for key, value in extras.items()
        )


def _deep_or_unstorable(value: Any, depth_left: int) -> bool:
    """Whether a decoded JSON value nests deeper than allowed or holds a lone surrogate."""
    if isinstance(value, str):
        return has_lone_surrogate(value)
    if isinstance(value, (list, dict)):
        if depth_left <= 0:
            return True
        items = value.items() if isinstance(value, dict) else enumerate(value)
        return any(
            (isinstance(key, str) and has_lone_surrogate(key))
            or _deep_or_unstorable(item, depth_left - 1)
            for key, item in items
        )
    return False


def _error(problems: list[tuple[str, str, str]]) -> InvalidEventError:
    fields = list(dict.fromkeys(key for key, _, _ in problems))
    return InvalidEventError([f"{message} @ {path}" for _, path, message in problems], fields)


def parse_event(data: object, *, policy: Policy | None = None) -> AppInfos:
    """One decoded JSON event as an `AppInfos`, validated by `Validator` under *policy*.

    Raises:
        InvalidEventError: with every problem as ``"msg @ $.field"``.
    """
    return Validator(policy).parse(data)
