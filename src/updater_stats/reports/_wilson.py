"""The Wilson score interval: a failure rate's plausible range from few devices."""

from __future__ import annotations

import math

#: The two-sided 95 % normal quantile.
Z_95 = 1.959963984540054


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for *successes* out of *trials* (``0 < trials``).

    Unlike the normal approximation it stays inside [0, 1] and is honest at 0 and at
    small counts: 0 failures out of 20 devices is 0 % to 16 %, not "0 %".
    """
    if trials <= 0:
        raise ValueError("trials must be positive")
    if not 0 <= successes <= trials:
        raise ValueError("successes must be between 0 and trials")
    p = successes / trials
    z2 = z * z
    denominator = 1 + z2 / trials
    centre = (p + z2 / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / denominator
    # At 0 and at n the bounds are exactly 0 and 1; rounding would leave 1e-17.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high
