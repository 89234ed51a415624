"""Bytes to JSON: the orjson fast path must agree with the standard library everywhere."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from updater_stats import InvalidBodyError, PayloadTooLargeError
from updater_stats._decode import _stdlib_loads, decode_body, gunzip, parse_json

from .wire_strategies import json_values

orjson = pytest.importorskip("orjson")


def outcome(parse, raw: bytes):
    try:
        return ("ok", parse(raw))
    except InvalidBodyError as exc:
        return ("error", exc.code)


@given(json_values)
def test_both_parsers_agree_on_json_documents(value):
    raw = json.dumps(value, ensure_ascii=False).encode()
    assert outcome(parse_json, raw) == outcome(_stdlib_loads, raw) == ("ok", value)


@given(st.binary(max_size=200))
def test_both_parsers_agree_on_any_bytes(raw):
    without_bom = raw.removeprefix(b"\xef\xbb\xbf")
    assert outcome(parse_json, raw) == outcome(_stdlib_loads, without_bom)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 12345678901234567890123}',  # beyond 64 bits: kept exact
        b'{"a": "\\ud800"}',  # lone surrogate: parsed, refused later per field
        b'{"a": 1, "a": 2}',  # duplicate keys: the last wins
        b'{"a": -0}',
        b'{"a": 1.0e-400}',
    ],
)
def test_edge_cases_match_the_standard_library(raw):
    assert parse_json(raw) == json.loads(raw)


def test_orjson_is_used_when_installed(monkeypatch):
    calls = []
    real = orjson.loads
    monkeypatch.setattr(orjson, "loads", lambda raw: calls.append(raw) or real(raw))

    parse_json(b'{"a": 1}')

    assert calls == [b'{"a": 1}']


def test_standard_library_alone_gives_the_same_answers(monkeypatch):
    monkeypatch.setattr("updater_stats._decode.orjson", None)

    assert parse_json(b'[{"a": 1}]') == [{"a": 1}]
    with pytest.raises(InvalidBodyError, match="not JSON"):
        parse_json(b"{")


def test_utf8_bom_is_tolerated():
    assert parse_json(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


def test_gunzip_handles_several_members():
    raw = gzip.compress(b'[{"a":') + gzip.compress(b" 1}]")
    assert decode_body(raw, 1000) == [{"a": 1}]


def test_gunzip_stops_at_the_limit_without_inflating_everything():
    bomb = gzip.compress(b"0" * (50 * 1024 * 1024))
    with pytest.raises(PayloadTooLargeError):
        gunzip(bomb, 1024 * 1024)


def test_gunzip_exactly_at_the_limit_is_fine():
    assert gunzip(gzip.compress(b"x" * 1000), 1000) == b"x" * 1000


def test_raw_deflate_is_not_mistaken_for_gzip():
    with pytest.raises(InvalidBodyError) as info:
        decode_body(zlib.compress(b"{}"), 1000)
    assert info.value.code == "invalid_utf8"
