"""A long, seeded fuzz run of `Collector.handle`: hostile bodies by the million.

    python -m scripts.fuzz_handle --bodies 1000000 --seed 1

Every body is wire-shaped but wrong in some way (or right, or random bytes, or
gzip gone bad). For each one the run checks the promises the endpoint makes:

- `handle` returns a dict or raises `UpdaterStatsError` (400 or 413): nothing else;
- a 200 stores exactly the items it acknowledged, each exactly as normalised
  (lower-case device_id, is_prod/is_emulator defaults, nulls dropped);
- an error stores nothing.

It prints the counts and exits 1 on the first broken promise, printing the body.
The test suite runs it briefly (tests/test_fuzz_script.py); docs/reliability.md
records a full run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from updater_stats import (
    Collector,
    Policy,
    StoredEvent,
    UpdaterStatsError,
    WriteResult,
    parse_event,
)
from updater_stats._models import WIRE_KEYS

BASE: dict[str, Any] = {
    "app_id": "com.example.app",
    "device_id": "0B5E5C1A-93B4-4F0E-A3A2-1F7F6F3B2D10",
    "platform": "android",
    "action": "set",
    "version_name": "1.4.2",
    "old_version_name": "1.4.1",
    "version_build": "2.0.0",
    "version_code": "200",
    "version_os": "14",
    "plugin_version": "8.42.0",
    "is_prod": True,
    "is_emulator": False,
    "defaultChannel": "production",
}

# Values that have broken parsers and databases before.
NASTY_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "\udfff tail",
    "🚀" * 40,
    "' OR '1'='1",
    "'); DROP TABLE events;--",
    '"\\',
    "\u202e\u200b\ufeff",
    "x" * 37,
    "x" * 2049,
    "é" * 1025,
    "download_complete",
    "NaN",
    "null",
]
NASTY_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    2**64 + 1,
    10**30,
    1.5,
    -0.0,
    1e308,
    [],
    {},
    [None],
    {"a": {"b": {"c": [1, 2, {"d": "e"}]}}},
    *NASTY_STRINGS,
]


class LastWrite:
    """A backend that keeps only the latest write, so the run checks each body on its own."""

    def __init__(self) -> None:
        self.events: list[StoredEvent] = []

    def write(self, events: Sequence[StoredEvent]) -> WriteResult:
        self.events = list(events)
        return WriteResult(inserted=len(events))

    def close(self) -> None:
        self.events = []


def normalised(event: dict[str, Any]) -> dict[str, Any]:
    """The stored form of an accepted wire event, written plainly."""
    out = {k: v for k, v in event.items() if not (k in WIRE_KEYS.values() and v is None)}
    out["device_id"] = out["device_id"].lower()
    if isinstance(out.get("metadata"), dict):  # null means absent in metadata too
        out["metadata"] = {k: v for k, v in out["metadata"].items() if v is not None}
    out.setdefault("is_prod", True)
    out.setdefault("is_emulator", False)
    return out


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def event(rng: random.Random, serial: int) -> dict[str, Any]:
    item = dict(BASE)
    item["timestamp"] = serial
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
        key = rng.choice([*WIRE_KEYS.values(), "extra", "stats_mode", "bundle_id"])
        roll = rng.random()
        if roll < 0.25:
            item.pop(key, None)
        elif roll < 0.75:
            item[key] = rng.choice(NASTY_VALUES)
        elif roll < 0.85:
            item[key] = {rng.choice(NASTY_STRINGS): rng.choice(NASTY_VALUES) for _ in range(3)}
        else:
            item[key] = nested(rng.randint(1, 40))
    return item


def body(rng: random.Random, serial: int) -> bytes:
    shape = rng.random()
    if shape < 0.05:
        return rng.randbytes(rng.randint(0, 200))
    if shape < 0.45:
        data = json.dumps(event(rng, serial)).encode()
    else:
        items: list[Any] = [
            event(rng, serial * 1000 + i) for i in range(rng.choice([0, 1, 2, 5, 20]))
        ]
        if items and rng.random() < 0.2:
            items[rng.randrange(len(items))] = rng.choice(NASTY_VALUES)
        data = json.dumps(items).encode()
    mangle = rng.random()
    if mangle < 0.05:
        data = data[: rng.randint(0, len(data))]  # truncated
    elif mangle < 0.1:
        data = gzip.compress(data)
    elif mangle < 0.12:
        data = gzip.compress(data)[: rng.randint(0, 30)]  # broken gzip
    elif mangle < 0.14:
        position = rng.randrange(len(data)) if data else 0
        data = data[:position] + bytes([rng.randrange(256)]) + data[position + 1 :]
    return data


_SURROGATE = re.compile("[\ud800-\udfff]")
_POLICY = Policy()


def check_stored(wire: dict[str, Any], stored: StoredEvent) -> None:
    """*stored* is the accepted *wire* event, whole, or cut where it says and only there.

    Text fields are checked exactly: lone surrogates become U+FFFD, then the text is cut
    at its cap. Inside ``metadata`` and the unknown fields, what was cut is only noted.
    """
    expected = normalised(wire)
    got = stored.event.to_wire()
    cut = set(stored.truncated)
    expect((got != expected) == bool(cut), "cut without a note, or a note without a cut", wire)
    for key, value in expected.items():
        if key in cut:
            mended = _SURROGATE.sub("\ufffd", value)[: _POLICY.max_length(key)]
            expect(got[key] == mended, "a cut field is not its mended prefix", key, wire)
        elif key == "metadata" and any(path.startswith("metadata") for path in cut):
            expect(len(got[key]) <= len(value), "cut metadata grew", wire)
        elif key in WIRE_KEYS.values():
            expect(got.get(key) == value, "an uncut field changed", key, wire)
        elif not any(path.startswith("extras") for path in cut):
            expect(got.get(key) == value, "an uncut unknown field changed", key, wire)


def acknowledged(data: bytes, answer: dict[str, Any]) -> list[dict[str, Any]]:
    payload = json.loads(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    if isinstance(payload, dict):
        return [payload]
    return [
        item
        for item, result in zip(payload, answer["results"], strict=True)
        if result["status"] == "ok"
    ]


class BrokenPromiseError(AssertionError):
    """The collector did something it promises never to do."""


def expect(condition: bool, *detail: object) -> None:
    # Not `assert`: the checks must run under `python -O` too.
    if not condition:
        raise BrokenPromiseError(*detail)


def run(bodies: int, seed: int, *, report_every: int = 0) -> Counter[str]:
    """Fuzz *bodies* bodies; return the outcome counts. Raises on a broken promise."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    backend = LastWrite()
    collector = Collector(backend)
    outcomes: Counter[str] = Counter()
    for serial in range(bodies):
        data = body(rng, serial)
        backend.events = []
        try:
            answer = collector.handle(data)
        except UpdaterStatsError as error:
            expect(error.status_code in {400, 413}, error.status_code, data)
            expect(backend.events == [], "stored on an error", data)
            json.dumps(error.body)
            outcomes[f"{error.status_code} {error.code}"] += 1
        else:
            accepted = acknowledged(data, answer)
            expect(len(backend.events) == len(accepted), "stored differs from acknowledged", data)
            for sent, record in zip(accepted, backend.events, strict=True):
                check_stored(sent, record)
            stored = [record.event.to_wire() for record in backend.events]
            for wire in stored:  # what was stored reads back as the same event
                expect(parse_event(wire).to_wire() == wire, "no round trip", wire)
            outcomes["200"] += 1
            outcomes["events stored"] += len(stored)
        if report_every and (serial + 1) % report_every == 0:
            print(f"{serial + 1} bodies", file=sys.stderr)
    collector.close()
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bodies", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.monotonic()
    try:
        outcomes = run(args.bodies, args.seed, report_every=100_000)
    except BrokenPromiseError as broken:
        print(f"BROKEN PROMISE: {broken!r}"[:4000])
        sys.exit(1)
    elapsed = time.monotonic() - started
    print(f"{args.bodies} bodies, seed {args.seed}, {elapsed:.0f} s, no broken promise")
    for outcome, count in sorted(outcomes.items()):
        print(f"  {outcome}: {count}")


if __name__ == "__main__":
    main()
