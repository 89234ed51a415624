"""How much CPU a Linux control group lets this process use: ``docker run --cpus 1``, a
Kubernetes CPU limit, a systemd ``CPUQuota=``.

A quota is not an affinity: a container limited to one CPU on a 16-core host still sees 16
cores in its affinity, and ``serve`` would start a worker per core that then take turns on one
CPU's worth of time. `cgroup_cpu_limit` reads the quota where Linux keeps it, version 2
(``cpu.max``) or version 1 (``cpu.cfs_quota_us`` over ``cpu.cfs_period_us``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

__all__ = ["CGROUP_ROOT", "cgroup_cpu_limit"]

#: Where Linux mounts the control groups.
CGROUP_ROOT = Path("/sys/fs/cgroup")
_MEMBERSHIP = Path("/proc/self/cgroup")

# Reads one group's limit: a version's own file format.
_Reader = Callable[[Path], "float | None"]


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, membership: Path = _MEMBERSHIP) -> float | None:
    """The CPUs this process's control groups allow it (1.5 for ``--cpus 1.5``), or `None`.

    The smallest quota found from the process's own group up to the root, since each group
    above it caps it too. `None` when no group sets one, or where there are no control groups to
    read (not Linux, or no ``/sys/fs/cgroup`` inside a container): unreadable or unexpected
    files count as no limit, never as an error.

    Args:
        root: Where the control groups are mounted.
        membership: The process's groups, ``/proc/self/cgroup``: one
            ``hierarchy:controllers:path`` line per hierarchy.
    """
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _, controllers, path = fields
        if controllers == "":  # version 2: one hierarchy for every controller
            bases = [root, root / "unified"]
            read = _v2_limit
        elif "cpu" in controllers.split(","):
            bases = [root / controllers, root / "cpu"]
            read = _v1_limit
        else:
            continue
        for base in bases:
            limits.extend(_limits_up_from(base, path, read))
    return min(limits, default=None)


def _limits_up_from(base: Path, path: str, read: _Reader) -> list[float]:
    """The limits of *path*'s group under *base* and of each group above it.

    Inside a container the process's path may name a group of the host that is not mounted
    there (its own group is then *base* itself), so a missing directory is passed over.
    """
    parts = [part for part in path.split("/") if part]
    found = []
    for depth in range(len(parts), -1, -1):
        limit = read(base.joinpath(*parts[:depth]))
        if limit is not None:
            found.append(limit)
    return found


def _v2_limit(group: Path) -> float | None:
    """``cpu.max``: ``"max 100000"`` (none) or ``"150000 100000"`` (quota and period, µs)."""
    try:
        quota, period = (group / "cpu.max").read_text().split()
        return None if quota == "max" else _cpus(int(quota), int(period))
    except (OSError, ValueError):
        return None


def _v1_limit(group: Path) -> float | None:
    """``cpu.cfs_quota_us`` (-1: none) over ``cpu.cfs_period_us``."""
    try:
        quota = int((group / "cpu.cfs_quota_us").read_text())
        period = int((group / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return _cpus(quota, period)


def _cpus(quota: int, period: int) -> float | None:
    return quota / period if quota > 0 and period > 0 else None
