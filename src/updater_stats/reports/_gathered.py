"""Report rows from what a read side gathered in Python: the reference implementation
(`EventReportSource`) and SQLite's day summaries build them alike."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from .. import _semantics as sem
from .._counts import LatencyCounts, RunningGroup
from .._versions import version_order_key

__all__ = ["latency_rows", "running_rows", "samples_of", "smallest"]


def smallest(current: int | None, value: int | None) -> int | None:
    """The smaller of two values, either of which may be missing."""
    if current is None:
        return value
    if value is None:
        return current
    return min(current, value)


def samples_of(
    downloads: Iterable[tuple[str, tuple[int | None, int | None, int | None]]],
) -> dict[str, list[int]]:
    """Download durations per version, from (version, (first start, first completion,
    least reported duration)) per device: the reported one, else completion minus start."""
    samples: dict[str, list[int]] = {}
    for version, (started, completed, reported) in downloads:
        if reported is not None:
            samples.setdefault(version, []).append(reported)
        elif started is not None and completed is not None and completed >= started:
            samples.setdefault(version, []).append(completed - started)
    return samples


def latency_rows(samples: Mapping[str, Sequence[int]]) -> list[LatencyCounts]:
    """Nearest-rank percentiles of each version's download durations, by version order."""
    rows = []
    for version in sorted(samples, key=version_order_key):
        values = sorted(samples[version])
        p50, p90, p99 = (values[sem.nearest_rank(p, len(values)) - 1] for p in sem.PERCENTILES)
        rows.append(
            LatencyCounts(version=version, samples=len(values), p50_ms=p50, p90_ms=p90, p99_ms=p99)
        )
    return rows


def running_rows(groups: Mapping[sem.RunningRow, int]) -> list[RunningGroup]:
    """The adoption report's groups, from devices counted per running values."""
    return [
        RunningGroup(
            version=version,
            platform=platform,
            os_version=os_version,
            plugin_version=plugin,
            native_version=native,
            devices=count,
        )
        for (version, platform, os_version, plugin, native), count in sorted(groups.items())
    ]
