"""scripts/memory_flood.py, briefly, so that the recorded memory figures cannot rot."""

from __future__ import annotations

from scripts import memory_flood


def test_a_short_flood_is_answered_and_measured():
    start, peak, answers = memory_flood.flood(budget=32 * 1024 * 1024, clients=2, seconds=1.0)

    assert set(answers) == {"200"}  # every worst-case batch stored
    assert answers["200"] >= 2
    assert start > 0
    assert peak >= start


def test_the_memory_measured_is_the_whole_server_s():
    # serve with two workers: the supervisor and both workers count.
    start, _, answers = memory_flood.flood(
        budget=32 * 1024 * 1024, clients=2, seconds=1.0, workers=2
    )

    assert answers["200"] >= 2
    assert start > 60  # three Python processes, each well over 20 MiB resident
