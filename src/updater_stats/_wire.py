"""Decoded JSON to `AppInfos`: one strict cattrs converter per `Policy`.

cattrs' default hooks coerce (``"false"`` becomes ``True``, ``1`` becomes
``"1"``). Devices that send the wrong type have a bug worth seeing, so every
field here gets a strict hook that checks the JSON type and the policy's
limits, and cattrs' detailed validation gathers every problem of an event
instead of stopping at the first.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs
import cattrs
from cattrs.errors import ClassValidationError
from cattrs.gen import make_dict_structure_fn, override

from ._actions import Action
from ._models import WIRE_KEYS, AppInfos, checked_wire_event
from ._policy import Policy
from .exceptions import InvalidEventError

_DEFAULT_POLICY = Policy()

_ATTRIBUTE_BY_WIRE_KEY = {key: attribute for attribute, key in WIRE_KEYS.items()}

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Android package names and iOS bundle ids: two or more dot-separated segments.
_REVERSE_DOMAIN = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+")
_INT64_MAX = 2**63 - 1


class FieldError(ValueError):
    """Problems inside one field, each with a path relative to that field (``""`` for itself)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(problems[0][1])
        self.problems = problems


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


def _has_lone_surrogate(text: str) -> bool:
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


def _text_problem(value: object, max_length: int) -> str | None:
    if type(value) is not str:
        return f"must be a string, not {json_type(value)}"
    if len(value) > max_length:
        return f"must be at most {max_length} characters, got {len(value)}"
    if _has_lone_surrogate(value):
        return "must be valid Unicode text (it holds a lone surrogate)"
    return None


StructureHook = Callable[[Any, Any], Any]


def _text_hook(max_length: int, check: IdCheck | None = None) -> StructureHook:
    # Called for nearly every field of every event: the usual case (a short ASCII string) is
    # settled by three cheap tests before any function call; `_text_problem` words the others.
    # A value of type `str` exactly is returned as is: what cattrs' advice, `str(value)`,
    # returns for it anyway (a plain str, even where the annotation is an enum).
    if check is None:

        def structure(value: Any, _type: Any) -> str:
            if type(value) is str and len(value) <= max_length and value.isascii():
                return value
            problem = _text_problem(value, max_length)
            if problem is not None:
                raise FieldError([("", problem)])
            return str(value)

        return structure

    def structure_checked(value: Any, _type: Any) -> str:
        if type(value) is str and len(value) <= max_length and value.isascii():
            problem = check(value)
        else:
            problem = _text_problem(value, max_length)
            if problem is None:
                problem = check(value)
        if problem is not None:
            raise FieldError([("", problem)])
        return str(value)

    return structure_checked


def _bool_hook(value: Any, _type: Any) -> bool:
    if value is True or value is False:
        return value
    raise FieldError([("", f"must be true or false, not {json_type(value)}")])


def _timestamp_hook(value: Any, _type: Any) -> int:
    if type(value) is not int:
        raise FieldError([("", f"must be an integer (epoch milliseconds), not {json_type(value)}")])
    if not 0 <= value <= _INT64_MAX:
        raise FieldError([("", f"must be between 0 and {_INT64_MAX}")])
    return value


def _metadata_hook(policy: Policy) -> StructureHook:
    def structure(value: Any, _type: Any) -> dict[str, str]:
        if type(value) is not dict:
            raise FieldError([("", f"must be an object of strings, not {json_type(value)}")])
        problems: list[tuple[str, str]] = []
        if len(value) > policy.max_metadata_keys:
            problems.append(
                ("", f"must have at most {policy.max_metadata_keys} keys, got {len(value)}")
            )
        for key, item in value.items():
            key_problem = _text_problem(key, policy.max_metadata_key_length)
            if key_problem is not None:
                problems.append(("", f"key {_printable(key)!r} {key_problem}"))
            item_problem = _text_problem(item, policy.max_metadata_value_length)
            if item_problem is not None:
                problems.append((f".{_printable(key)}", item_problem))
        if problems:
            raise FieldError(problems)
        return value

    return structure


def _check_device_id(policy: Policy) -> Callable[[str], str | None] | None:
    if not policy.require_uuid_device_id:
        return None
    return lambda value: None if _UUID.fullmatch(value) else "must be a UUID"


def _check_app_id(policy: Policy) -> Callable[[str], str | None] | None:
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


def _check_action(policy: Policy) -> Callable[[str], str | None] | None:
    if policy.accept_unknown_actions:
        return None
    return lambda value: None if Action.parse(value) else "is not a known action"


IdCheck = Callable[[str], str | None]


def _id_checks(policy: Policy) -> dict[str, IdCheck]:
    """The policy's checks of ``app_id``, ``device_id`` and ``action``, by wire key.

    One device sends the same ids in every event of its batch: each check remembers
    recent answers instead of running the same regular expression 200 times (bounded,
    thread-safe). The converter and the fast path share them.
    """
    checks = {
        "app_id": _check_app_id(policy),
        "device_id": _check_device_id(policy),
        "action": _check_action(policy),
    }
    return {
        key: functools.lru_cache(maxsize=1024)(check)
        for key, check in checks.items()
        if check is not None
    }


def _build_converter(
    policy: Policy, checks: Mapping[str, IdCheck]
) -> Callable[[Mapping[str, Any]], AppInfos]:
    converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=True)
    special: dict[str, StructureHook] = {
        "is_prod": _bool_hook,
        "is_emulator": _bool_hook,
        "timestamp": _timestamp_hook,
        "metadata": _metadata_hook(policy),
    }
    overrides = {  # every other field is text; the ids and the action have a check too
        attribute: override(
            rename=key,
            struct_hook=special.get(attribute)
            or _text_hook(policy.max_length(key), checks.get(key)),
        )
        for attribute, key in WIRE_KEYS.items()
    }
    return make_dict_structure_fn(AppInfos, converter, **overrides)  # type: ignore[arg-type]


_BOOLEAN_KEYS = frozenset({"is_prod", "is_emulator"})
_REQUIRED_KEYS = frozenset(
    WIRE_KEYS[field.name]
    for field in attrs.fields(AppInfos)
    if field.default is attrs.NOTHING and field.name in WIRE_KEYS
)


def _plain_text(value: object, max_length: int) -> bool:
    return type(value) is str and len(value) <= max_length and value.isascii()


class _FastPath:
    """The converter's answer for the usual event, found faster, or `None` to ask the converter.

    Nearly every event holds protocol fields only, no nulls, short ASCII text and
    the right JSON types. Checking that in one loop, then building `AppInfos`
    without its ``__init__``, takes a third less time than cattrs' generated code
    with its hooks. Anything else (a wrong type, a long or non-ASCII string, a
    missing field, an id the policy refuses) gets `None`, and the converter, which
    words every problem, decides. So this path may only accept what the converter
    accepts, with the same result: a property test holds both to that.
    """

    def __init__(self, policy: Policy, checks: Mapping[str, IdCheck]) -> None:
        self._text_limits = {
            key: policy.max_length(key)
            for key in WIRE_KEYS.values()
            if key not in _BOOLEAN_KEYS and key not in {"timestamp", "metadata"}
        }
        self._checks = list(checks.items())
        self._max_metadata_keys = policy.max_metadata_keys
        self._max_metadata_key_length = policy.max_metadata_key_length
        self._max_metadata_value_length = policy.max_metadata_value_length

    def __call__(self, data: dict[str, Any]) -> AppInfos | None:
        # A null (the field is absent, section 3) has none of the types checked: declined.
        if not data.keys() >= _REQUIRED_KEYS or not self._plain(data):
            return None
        for key, check in self._checks:
            if check(data[key]) is not None:
                return None
        return checked_wire_event(data, data["device_id"].lower())

    def _plain(self, data: dict[str, Any]) -> bool:
        text_limits = self._text_limits
        for key, value in data.items():
            limit = text_limits.get(key)
            if limit is not None:
                if type(value) is not str or len(value) > limit or not value.isascii():
                    return False
            elif key in _BOOLEAN_KEYS:
                if value is not True and value is not False:
                    return False
            elif key == "timestamp":
                if type(value) is not int or not 0 <= value <= _INT64_MAX:
                    return False
            elif key != "metadata" or not self._plain_metadata(value):
                return False  # metadata that is not plain, or a field the protocol does not name
        return True

    def _plain_metadata(self, value: object) -> bool:
        key_length, value_length = self._max_metadata_key_length, self._max_metadata_value_length
        return (
            type(value) is dict
            and len(value) <= self._max_metadata_keys
            and all(
                _plain_text(key, key_length) and _plain_text(item, value_length)
                for key, item in value.items()
            )
        )


@attrs.frozen
class _Validators:
    converter: Callable[[Mapping[str, Any]], AppInfos]
    fast_path: _FastPath


@functools.lru_cache(maxsize=16)
def _build_validators(policy: Policy) -> _Validators:
    # Built once per policy: generating the structuring code is the expensive part.
    checks = _id_checks(policy)
    return _Validators(_build_converter(policy, checks), _FastPath(policy, checks))


_last: tuple[Policy, _Validators] | None = None


def _validators_for(policy: Policy) -> _Validators:
    # Asked once per event: looking up the cache hashes and compares every field of the
    # policy, so the last answer is kept for the same policy object.
    global _last  # noqa: PLW0603 - a one-entry cache; a race only looks it up again
    last = _last
    if last is not None and last[0] is policy:
        return last[1]
    validators = _build_validators(policy)
    _last = (policy, validators)
    return validators


def _extras_problems(extras: dict[str, Any], policy: Policy) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    if len(extras) > policy.max_extra_fields:
        problems.append(
            (
                "",
                f"at most {policy.max_extra_fields} unknown fields are kept, got {len(extras)}",
            )
        )
    for key, value in extras.items():
        problem = _json_value_problem(key, policy.max_extra_depth) or _json_value_problem(
            value, policy.max_extra_depth
        )
        if problem is not None:
            problems.append((f".{_printable(key)}", problem))
    return problems


def _json_value_problem(value: Any, depth_left: int) -> str | None:
    """Why a decoded JSON value cannot be stored as sent, or `None`."""
    if isinstance(value, str):
        return "holds a lone surrogate" if _has_lone_surrogate(value) else None
    if isinstance(value, (list, dict)):
        if depth_left <= 0:
            return "is nested too deeply"
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            problem = _json_value_problem(key, depth_left) or _json_value_problem(
                item, depth_left - 1
            )
            if problem is not None:
                return problem
    return None


def _format(path: str, problem: str) -> str:
    return f"{problem} @ {path}"


def _collect(exc: ClassValidationError, root: str) -> list[tuple[str, str]]:
    """Flatten cattrs' exception group to ``(wire key, "msg @ path")`` pairs."""
    found: list[tuple[str, str]] = []
    with_notes, without = exc.group_exceptions()
    for error, note in with_notes:
        key = WIRE_KEYS.get(note.name, note.name)
        if isinstance(error, FieldError):
            found.extend((key, _format(f"{root}.{key}{sub}", msg)) for sub, msg in error.problems)
        elif isinstance(error, KeyError):
            found.append((key, _format(f"{root}.{key}", "required field missing")))
        else:
            found.append((key, _format(f"{root}.{key}", str(error))))
    found.extend(("", _format(root, str(error))) for error in without)
    return found


def validate_event(data: object, policy: Policy, root: str = "$") -> AppInfos | InvalidEventError:
    """One decoded JSON value to an event, or an error listing every problem.

    Returned rather than raised: a batch collects one per bad item.
    """
    validators = _validators_for(policy)
    if type(data) is dict:
        event = validators.fast_path(data)
        if event is not None:
            return event
    return _validate_in_full(data, validators.converter, policy, root)


def validate_events(
    items: Iterable[object], policy: Policy
) -> Iterator[AppInfos | InvalidEventError]:
    """`validate_event` for each item of a batch, error paths as ``$[index].field``.

    The batch's loop: the validators are looked up once, and an item's path is
    only written out when it has a problem to report.
    """
    validators = _validators_for(policy)
    fast_path, converter = validators.fast_path, validators.converter
    for index, data in enumerate(items):
        if type(data) is dict:
            event = fast_path(data)
            if event is not None:
                yield event
                continue
        yield _validate_in_full(data, converter, policy, f"$[{index}]")


def _validate_in_full(
    data: object,
    converter: Callable[[Mapping[str, Any]], AppInfos],
    policy: Policy,
    root: str,
) -> AppInfos | InvalidEventError:
    """`validate_event` through the converter: any event, every problem worded."""
    if type(data) is not dict:
        return InvalidEventError(
            [_format(root, f"an event must be a JSON object, not {json_type(data)}")], []
        )
    known: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    for key, value in data.items():
        if key in _ATTRIBUTE_BY_WIRE_KEY:
            if value is not None:  # null means absent (protocol, section 3)
                known[key] = value
        else:
            extras[key] = value
    problems: list[tuple[str, str]] = []
    event: AppInfos | None = None
    try:
        event = converter(known)
    except ClassValidationError as exc:
        problems.extend(_collect(exc, root))
    if extras:
        problems.extend(
            ("extras", _format(f"{root}{sub}", msg))
            for sub, msg in _extras_problems(extras, policy)
        )
    if problems or event is None:
        fields = list(dict.fromkeys(field for field, _ in problems if field))
        return InvalidEventError([message for _, message in problems], fields)
    device_id = event.device_id.lower()
    if extras or device_id != event.device_id:
        event = attrs.evolve(event, device_id=device_id, extras=extras)
    return event


def structure_event(data: object, policy: Policy | None = None) -> AppInfos:
    """`validate_event` for one event, raising its error."""
    outcome = validate_event(data, policy or _DEFAULT_POLICY)
    if isinstance(outcome, InvalidEventError):
        raise outcome
    return outcome
