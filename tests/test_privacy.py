"""Pseudonymisation: no raw id reaches storage, keys and reports still work, and forget finds it."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from updater_stats import (
    Collector,
    ConfigurationError,
    MemoryBackend,
    Privacy,
    SQLiteBackend,
    StorageBackend,
)
from updater_stats.privacy import CUSTOM_ID_ENV_VAR, SECRET_ENV_VAR
from updater_stats.reports import ReportQuery, reports_for
from updater_stats.testing import wire_event

from .conftest import body, make_backend, stored

SECRET = "a-test-secret-of-32-characters!!"
PRIVACY = Privacy(secret=SECRET)
DEVICES = [str(uuid.UUID(int=index * 7919 + 1, version=4)) for index in range(5)]
USERS = ["alice@example.com", "user-1234", "Bob Example"]


def test_a_pseudonym_is_a_stable_uuid_of_the_keyed_hash():
    device = DEVICES[0]
    pseudonym = PRIVACY.device_pseudonym(device)

    assert uuid.UUID(pseudonym).version == 8  # RFC 9562 "custom": not a random device UUID
    assert len(pseudonym) == 36
    assert pseudonym != device
    assert Privacy(secret=SECRET).device_pseudonym(device) == pseudonym  # stable
    assert PRIVACY.device_pseudonym(device.upper()) == pseudonym  # devices send any case
    assert Privacy(secret=SECRET + "2").device_pseudonym(device) != pseudonym  # keyed
    # The two fields are separate namespaces: the same text gets two unrelated pseudonyms.
    assert PRIVACY.custom_pseudonym(device) != pseudonym
    assert len({PRIVACY.device_pseudonym(d) for d in DEVICES}) == len(DEVICES)


def test_the_secret_is_never_shown():
    assert SECRET not in repr(PRIVACY)
    assert SECRET not in str(PRIVACY)
    with pytest.raises(ConfigurationError) as weak:
        Privacy(secret="short-secret")
    assert "short-secret" not in str(weak.value)
    assert weak.value.code == "weak_secret"


def test_hashing_needs_a_secret_and_the_options_are_checked():
    with pytest.raises(ConfigurationError, match="needs a secret"):
        Privacy()
    with pytest.raises(ConfigurationError, match="needs a secret"):
        Privacy(device_id="keep", custom_id="hash")
    with pytest.raises(ValueError, match="custom_id"):
        Privacy(secret=SECRET, custom_id="encrypt")  # type: ignore[arg-type]
    dropping = Privacy(device_id="keep", custom_id="drop")  # no secret needed
    assert dropping.stored_custom_id("user-1") is None
    assert dropping.stored_device_id(DEVICES[0].upper()) == DEVICES[0]
    assert not Privacy(device_id="keep", custom_id="keep").changes_events


def test_custom_id_policies():
    assert Privacy(secret=SECRET, custom_id="keep").stored_custom_id("u") == "u"
    assert Privacy(secret=SECRET, custom_id="drop").stored_custom_id("u") is None
    assert PRIVACY.stored_custom_id("u") == PRIVACY.custom_pseudonym("u") != "u"
    # "" means "no user" for many apps: it identifies nobody and stays "".
    assert PRIVACY.stored_custom_id("") == ""
    assert PRIVACY.stored_custom_id(None) is None


def test_privacy_from_the_environment():
    assert Privacy.from_env({}) is None
    assert Privacy.from_env({CUSTOM_ID_ENV_VAR: "keep"}) is None
    hashed = Privacy.from_env({SECRET_ENV_VAR: SECRET})
    assert hashed is not None
    assert (hashed.device_id, hashed.custom_id) == ("hash", "hash")
    assert hashed.device_pseudonym(DEVICES[0]) == PRIVACY.device_pseudonym(DEVICES[0])
    kept = Privacy.from_env({SECRET_ENV_VAR: SECRET, CUSTOM_ID_ENV_VAR: "Keep"})
    assert kept is not None
    assert kept.custom_id == "keep"
    dropped = Privacy.from_env({CUSTOM_ID_ENV_VAR: "drop"})
    assert dropped == Privacy(device_id="keep", custom_id="drop")
    with pytest.raises(ConfigurationError, match="keep, hash or drop"):
        Privacy.from_env({CUSTOM_ID_ENV_VAR: "scramble"})
    with pytest.raises(ConfigurationError, match="custom_id needs a secret"):
        Privacy.from_env({CUSTOM_ID_ENV_VAR: "hash"})


def test_without_privacy_the_hot_path_is_untouched():
    assert Collector(MemoryBackend())._recorder._pseudonymise is None
    keep_all = Privacy(device_id="keep", custom_id="keep")
    assert Collector(MemoryBackend(), privacy=keep_all)._recorder._pseudonymise is None


def sent_events(now: dt.datetime) -> list[dict[str, Any]]:
    """Three events per device, some with a user, a few minutes old, as devices send them."""
    events = []
    for index, device in enumerate(DEVICES):
        for step, action in enumerate(["download_complete", "set", "app_moved_to_foreground"]):
            stamp = int((now - dt.timedelta(minutes=30 - step)).timestamp() * 1000)
            events.append(
                wire_event(
                    device_id=device.upper() if index % 2 else device,
                    action=action,
                    timestamp=stamp,
                    custom_id=USERS[index % len(USERS)] if index < 4 else None,
                )
            )
    return events


def stored_text(backend: StorageBackend, kind: str) -> str:
    """Everything the backend holds, every table and column, as one text to search."""
    if kind == "memory":
        assert isinstance(backend, MemoryBackend)
        return repr(backend._events) + repr(backend._keys)
    if kind.startswith("sqlite"):
        assert isinstance(backend, SQLiteBackend)
        assert backend._conn is not None
        text = "\n".join(backend._conn.iterdump())
        if kind == "sqlite-file":
            # The files themselves too: the WAL, free pages, everything on disk.
            for path in Path(backend.path).parent.glob(Path(backend.path).name + "*"):
                text += path.read_bytes().decode("latin-1")
        return text
    if kind == "postgres":
        with psycopg.connect(backend.conninfo, autocommit=True) as conn:  # type: ignore[attr-defined]
            schema = backend.schema  # type: ignore[attr-defined]
            tables = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema]
            ).fetchall()
            assert len(tables) == 2  # events and schema_version
            rows = []
            for (table,) in tables:
                query = sql.SQL("SELECT t::text FROM {}.{} t").format(
                    sql.Identifier(schema), sql.Identifier(table)
                )
                rows += [row[0] for row in conn.execute(query).fetchall()]
        return "\n".join(rows)
    assert kind == "clickhouse"
    client = backend._client  # type: ignore[attr-defined]
    database = backend.database  # type: ignore[attr-defined]
    tables = client.query(
        "SELECT name FROM system.tables WHERE database = {db:String}", parameters={"db": database}
    ).result_rows
    assert tables == [("events",)]
    raw = client.raw_query(f"SELECT * FROM `{database}`.`events` FORMAT TabSeparated")
    return bytes(raw).decode("utf-8", "replace")


@pytest.fixture(params=["memory", "sqlite-file", "sqlite-memory", "postgres", "clickhouse"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_no_raw_id_reaches_any_backend(kind: str, tmp_path: Path):
    backend = make_backend(kind, tmp_path)
    now = dt.datetime.now(dt.timezone.utc)
    collector = Collector(backend, privacy=PRIVACY)
    events = sent_events(now)
    collector.handle(body(events))
    collector.handle(body(events[:4]))  # a retry: deduplicated on the pseudonymised key
    try:
        text = stored_text(backend, kind)
        rows = stored(backend)
        assert len(rows) == len(events)
        for device in DEVICES:
            for form in (device, device.upper(), device.replace("-", "")):
                assert form not in text, f"a raw device_id is stored ({kind})"
            assert PRIVACY.device_pseudonym(device) in text  # the search does see the data
        for user in USERS:
            assert user not in text, f"a raw custom_id is stored ({kind})"
        assert {r.event.device_id for r in rows} == {PRIVACY.device_pseudonym(d) for d in DEVICES}
        assert {r.event.custom_id for r in rows} == {
            *(PRIVACY.custom_pseudonym(u) for u in USERS),
            None,
        }
        # The key is made from what is stored, and is the same for a re-sent event.
        assert all(r.key == r.event.event_key for r in rows)
    finally:
        collector.close()


@pytest.mark.parametrize("kind", ["sqlite-file", "postgres", "clickhouse"])
def test_reports_count_devices_the_same_with_pseudonyms(kind: str, tmp_path: Path):
    now = dt.datetime.now(dt.timezone.utc)
    query = ReportQuery(
        app_id="com.example.app", since=now - dt.timedelta(days=1), until=now + dt.timedelta(1)
    )
    counted = []
    for privacy in (None, PRIVACY):
        folder = tmp_path / ("plain" if privacy is None else "pseudonymised")
        folder.mkdir()
        backend = make_backend(kind, folder)
        with Collector(backend, privacy=privacy) as collector:
            collector.handle(body(sent_events(now)))
            with reports_for(backend) as reports:
                devices = reports.active_devices(query).total
                installs = reports.version(query, "1.4.2").installs
        counted.append((devices, installs))

    assert counted == [(len(DEVICES), len(DEVICES))] * 2


def test_validation_runs_on_the_raw_input():
    backend = MemoryBackend()
    collector = Collector(backend, privacy=PRIVACY)

    answer = collector.handle(body([wire_event(device_id="not-a-uuid"), wire_event()]))

    assert [r["status"] for r in answer["results"]] == ["error", "ok"]
    assert answer["results"][0]["moreInfo"]["fields"] == ["device_id"]
    assert [e.event.device_id for e in backend.events()] == [
        PRIVACY.device_pseudonym(wire_event()["device_id"])
    ]


def test_custom_id_drop_and_keep(tmp_path: Path):
    for custom_id, expected in [("drop", None), ("keep", "user-1234")]:
        backend = MemoryBackend()
        collector = Collector(backend, privacy=Privacy(secret=SECRET, custom_id=custom_id))
        collector.handle(body(wire_event(custom_id="user-1234")))
        (read,) = backend.events()
        assert read.event.custom_id == expected
        assert read.event.device_id == PRIVACY.device_pseudonym(wire_event()["device_id"])


def test_forget_takes_the_raw_id_on_a_pseudonymised_store(backend: StorageBackend):
    now = dt.datetime.now(dt.timezone.utc)
    events = sent_events(now)
    # Stored before pseudonymisation was turned on: raw ids, which forget finds too.
    # (Not closed: closing a collector closes its backend, which the next one uses.)
    Collector(backend).handle(body(events[:3]))
    collector = Collector(backend, privacy=PRIVACY)
    collector.handle(body(events))

    assert collector.forget(device_id=DEVICES[0].upper()) == 6  # 3 raw + 3 pseudonymised
    assert collector.forget(custom_id=USERS[1]) == 3  # device 1's events, pseudonymised
    assert collector.forget(device_id=DEVICES[0]) == 0

    left = stored(backend)
    assert {e.event.device_id for e in left} == {PRIVACY.device_pseudonym(d) for d in DEVICES[2:]}
    assert len(left) == 9
    with pytest.raises(ValueError, match="custom_id must not be empty"):
        collector.forget(custom_id="")
    with pytest.raises(TypeError):
        collector.forget()


def test_rejected_events_are_logged_without_the_body_or_a_raw_id(caplog: pytest.LogCaptureFixture):
    collector = Collector(MemoryBackend(), privacy=PRIVACY)
    device = DEVICES[3]
    bad = wire_event(device_id=device, is_prod="yes", custom_id="alice@example.com")
    with caplog.at_level(logging.INFO, logger="updater_stats.intake"):
        collector.handle(body([wire_event(), bad, {"app_id": 7}]))
        collector.respond(b"{not json")

    lines = [record for record in caplog.records if record.name == "updater_stats.intake"]
    assert [r.getMessage() for r in lines] == [
        "rejected event: code=invalid_event app_id=com.example.app fields=is_prod index=1",
        (
            "rejected event: code=invalid_event app_id=None "
            "fields=app_id,device_id,action,version_name index=2"
        ),
        "rejected body: code=invalid_json",
    ]
    details = lines[0].updater_stats  # type: ignore[attr-defined]
    assert details == {
        "code": "invalid_event",
        "fields": ["is_prod"],
        "app_id": "com.example.app",
        "index": 1,
        "held_back": 0,
        "device": PRIVACY.device_pseudonym(device),
    }
    everything = json.dumps([r.__dict__ for r in lines], default=str)
    assert device not in everything
    assert "alice@example.com" not in everything
    assert '"yes"' not in everything


def test_without_pseudonymisation_logs_name_no_device_at_all(caplog: pytest.LogCaptureFixture):
    collector = Collector(MemoryBackend())
    with caplog.at_level(logging.INFO, logger="updater_stats.intake"):
        collector.respond(body(wire_event(device_id=DEVICES[2], platform=3)))

    (record,) = [r for r in caplog.records if r.name == "updater_stats.intake"]
    assert "device" not in record.updater_stats  # type: ignore[attr-defined]
    assert not re.search(DEVICES[2], json.dumps(record.__dict__, default=str))
