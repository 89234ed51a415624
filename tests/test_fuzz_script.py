"""The long fuzz run (scripts/fuzz_handle.py), briefly, so that it cannot rot."""

from __future__ import annotations

import pytest
from scripts import fuzz_handle


@pytest.mark.parametrize("seed", [1, 2])
def test_a_short_fuzz_run_keeps_every_promise(seed):
    outcomes = fuzz_handle.run(3000, seed)

    assert outcomes["200"] > 300  # valid bodies and partly valid batches get through
    assert outcomes["events stored"] > 300
    assert outcomes["400 invalid_json"] > 0
    assert outcomes["400 invalid_event"] > 0
    assert sum(n for k, n in outcomes.items() if k != "events stored") == 3000


def test_the_checks_catch_a_collector_that_stores_the_wrong_thing(monkeypatch):
    original = fuzz_handle.LastWrite.write

    def tampering(self, events):
        result = original(self, events)
        if self.events:
            self.events = self.events[:-1]  # one acknowledged event goes missing
        return result

    monkeypatch.setattr(fuzz_handle.LastWrite, "write", tampering)
    with pytest.raises(fuzz_handle.BrokenPromiseError, match="stored differs"):
        fuzz_handle.run(500, 1)
