"""One-sided 95 % confidence bounds from a probe's own samples, exact (no normal approximation): the
upper bound says a probe passes, the lower bound that it fails.

A percentile's bound is an order statistic. With `n` samples of a continuous metric, the number below the
true q-quantile is Binomial(n, q); the k-th smallest sample lies at or above the quantile unless at least
k samples fall below it, so it is an upper bound with confidence P(Binomial(n, q) < k). The bound is the
k-th smallest sample for the smallest k whose confidence reaches 95 % (MLPerf LoadGen's early-stopping
rule). When even the largest sample is not confident enough (`n` too small: 299 samples for a p99), there
is no bound: the probe must be extended, not judged.

The lower bound mirrors it: the k-th smallest sample lies below the quantile unless fewer than k samples
do, so it is a lower bound with confidence P(Binomial(n, q) >= k), the largest k that reaches 95 %.

A proportion's bound (the error rate) is the one-sided Clopper-Pearson bound: the largest p under which
seeing at most the observed failures still has probability >= 5 % (its lower bound: the smallest p under
which seeing at least them does).

The point estimate beside each bound is the value at 0-based rank floor(q x n) of the sorted samples, as
every report computes a percentile (ClickHouse quantileExact; collector/views.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

CONFIDENCE = 0.95


def _log_pmf(i: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 0.0 if i == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if i == n else -math.inf
    return (math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
            + i * math.log(p) + (n - i) * math.log1p(-p))


def bound_rank(n: int, q: float, confidence: float = CONFIDENCE) -> int | None:
    """The 1-based rank k of the sorted samples that bounds the q-quantile from above with `confidence`:
    the smallest k with P(Binomial(n, q) < k) >= confidence; None when no k <= n does."""
    tail = 0.0  # P(Binomial(n, q) >= i), summed from i = n down
    for i in range(n, -1, -1):
        tail += math.exp(_log_pmf(i, n, q))
        if tail > 1.0 - confidence:
            return i + 1 if i < n else None
    return 0  # unreachable: the whole distribution sums to 1


def lower_rank(n: int, q: float, confidence: float = CONFIDENCE) -> int | None:
    """The 1-based rank k of the sorted samples that bounds the q-quantile from below with `confidence`:
    the largest k with P(Binomial(n, q) >= k) >= confidence; None when not even k = 1 does."""
    if n == 0:
        return None
    below = 0.0  # P(Binomial(n, q) < i), summed from i = 0 up
    for i in range(n + 1):
        if below > 1.0 - confidence:
            return i - 1 if i > 1 else None
        below += math.exp(_log_pmf(i, n, q))
    return n


def samples_needed(q: float, confidence: float = CONFIDENCE) -> int:
    """The fewest samples that give the q-quantile a bound: the largest sample bounds it once
    1 - q^n >= confidence."""
    return math.ceil(math.log1p(-confidence) / math.log(q) - 1e-9)


def percentile_bound(samples: Sequence[float], q: float, confidence: float = CONFIDENCE) -> float | None:
    """The upper `confidence` bound of the q-quantile of `samples`; None: too few samples for one."""
    rank = bound_rank(len(samples), q, confidence)
    return None if rank is None else sorted(samples)[rank - 1]


def percentile_lower(samples: Sequence[float], q: float, confidence: float = CONFIDENCE) -> float | None:
    """The lower `confidence` bound of the q-quantile of `samples`; None: too few samples for one."""
    rank = lower_rank(len(samples), q, confidence)
    return None if rank is None else sorted(samples)[rank - 1]


def percentile_point(samples: Sequence[float], q: float) -> float | None:
    """The q-quantile as the reports state it; None for no samples."""
    if not samples:
        return None
    return sorted(samples)[point_rank(len(samples), q) - 1]


def point_rank(n: int, q: float) -> int:
    """The 1-based rank, among `n` > 0 sorted samples, of the q-quantile as the reports state it: 0-based
    floor(q x n), the last sample at most (ClickHouse quantileExact)."""
    return min(n - 1, int(q * n)) + 1


def order_ranks(n: int, q: float, confidence: float = CONFIDENCE) -> tuple[int | None, int | None, int | None]:
    """The 1-based ranks, among `n` sorted samples, of the q-quantile's point estimate, its upper and its lower
    bound (None: no sample, or too few for that bound): what a store that sorts the samples reads
    (collector/probe_readings.py) to state what percentile_point, percentile_bound and percentile_lower state."""
    return point_rank(n, q) if n else None, bound_rank(n, q, confidence), lower_rank(n, q, confidence)


def _cdf(x: int, n: int, p: float) -> float:
    return min(1.0, sum(math.exp(_log_pmf(i, n, p)) for i in range(x + 1)))


def proportion_bound(failures: int, n: int, confidence: float = CONFIDENCE) -> float:
    """The one-sided Clopper-Pearson upper bound of a proportion seen as `failures` out of `n`: the p
    where P(Binomial(n, p) <= failures) = 1 - confidence (1 when every trial failed, or none was made)."""
    if n == 0 or failures >= n:
        return 1.0
    if failures == 0:
        return 1.0 - (1.0 - confidence) ** (1.0 / n)
    low, high = failures / n, 1.0
    for _ in range(60):  # bisection: the CDF falls as p grows
        mid = (low + high) / 2
        if _cdf(failures, n, mid) > 1.0 - confidence:
            low = mid
        else:
            high = mid
    return high


def proportion_lower(failures: int, n: int, confidence: float = CONFIDENCE) -> float:
    """The one-sided Clopper-Pearson lower bound of a proportion seen as `failures` out of `n`: the p
    where P(Binomial(n, p) >= failures) = 1 - confidence (0 when none failed)."""
    if failures <= 0 or n == 0:
        return 0.0
    return 1.0 - proportion_bound(n - failures, n, confidence)
