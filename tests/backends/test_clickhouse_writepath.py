"""ClickHouse writes: columns of plain values, bytes only for a batch that needs them.

The contract suite proves what any write stores; these pin the shortcuts of the write path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import attrs
import pytest

from updater_stats.backends.clickhouse import ClickHouseBackend
from updater_stats.backends.clickhouse._backend import _row_id
from updater_stats.testing import assert_same_events, stored_event

from . import servers


@pytest.fixture
def backend() -> Iterator[ClickHouseBackend]:
    backend = servers.clickhouse_backend()
    yield backend
    backend.close()


def test_lone_surrogates_from_outside_the_collector_read_back_exactly(backend: ClickHouseBackend):
    plain = stored_event(timestamp=1, metadata={"k": "é"})
    odd = attrs.evolve(
        plain,
        event=attrs.evolve(
            plain.event, timestamp=2, custom_id="a\ud800", metadata={"\udfff": "v"}, extras={}
        ),
        key="key\udc00",
    )

    result = backend.write([plain, odd])

    assert result.inserted == 2
    assert_same_events(backend.events(), [plain, odd])


def test_row_ids_are_the_keys_hash_or_random_version_4(backend: ClickHouseBackend):
    keyed = stored_event(timestamp=7)
    keyless = [stored_event(timestamp=None) for _ in range(3)]
    backend.write([keyed, *keyless])
    assert backend._client is not None

    rows = backend._client.query(
        f"SELECT row_id, event_key FROM {backend.database}.events ORDER BY seq"
    ).result_rows

    assert rows[0] == (_row_id(keyed.key or ""), keyed.key)
    random_ids = [row_id for row_id, key in rows[1:] if key is None]
    assert len(set(random_ids)) == 3
    assert all(isinstance(i, uuid.UUID) and i.version == 4 for i in random_ids)
    assert all(i.variant == uuid.RFC_4122 for i in random_ids)


def test_known_keys_and_copies_in_the_batch_are_the_duplicates(backend: ClickHouseBackend):
    backend.write([stored_event(timestamp=1)])

    result = backend.write(
        [
            stored_event(timestamp=1),  # known
            stored_event(timestamp=2),
            stored_event(timestamp=2),  # a copy earlier in this batch
            stored_event(timestamp=None),  # no key: always new
        ]
    )

    assert (result.inserted, result.duplicates) == (2, 2)
    assert result.duplicate_indexes == (0, 2)
    assert sorted(e.event.timestamp or 0 for e in backend.events()) == [0, 1, 2]


def test_keys_are_looked_up_in_as_many_statements_as_the_query_size_needs(
    backend: ClickHouseBackend,
):
    events = [stored_event(timestamp=n) for n in range(7)]
    backend.ping()
    backend._lookup_ids = 2  # as if max_query_size held two ids a statement

    assert backend.write(events[:3]).inserted == 3
    again = backend.write([*events, events[4]])

    assert (again.inserted, again.duplicates) == (4, 4)
    assert again.duplicate_indexes == (0, 1, 2, 7)
    assert_same_events(backend.events(), events)


def test_the_key_look_up_takes_row_ids_of_32_hex_digits_only(
    backend: ClickHouseBackend,
):
    event = stored_event(timestamp=1)
    backend.ping()
    assert backend._client is not None

    with pytest.raises(ValueError, match="hex digits"):
        backend._known_row_ids(backend._client, [event], ["0' OR 1=1 --"])
