"""The bound rule: exact order-statistic bounds of percentiles, Clopper-Pearson bounds of proportions."""

from __future__ import annotations

import math
import random

import pytest

from siliconbench.core.slo_bounds import (bound_rank, percentile_bound, percentile_lower, percentile_point,
                                          proportion_bound, proportion_lower, samples_needed)


def test_a_p99_needs_299_samples_and_then_is_bounded_by_the_largest():
    # 1 - 0.99^299 = 0.9505 >= 0.95; 1 - 0.99^298 = 0.94996 < 0.95
    assert samples_needed(0.99) == 299
    assert bound_rank(298, 0.99) is None
    assert bound_rank(299, 0.99) == 299


def test_a_median_of_ten_is_bounded_by_the_ninth_smallest():
    # P(Bin(10, .5) <= 7) = 1 - 56/1024 = 0.9453 < 0.95; P(Bin(10, .5) <= 8) = 1 - 11/1024 = 0.9893
    assert bound_rank(10, 0.5) == 9
    assert percentile_bound(list(range(10, 0, -1)), 0.5) == 9


def test_a_p90_of_29_samples_is_bounded_by_the_largest_and_of_28_not_at_all():
    # 1 - 0.9^29 = 0.9529; 1 - 0.9^28 = 0.9477
    assert samples_needed(0.9) == 29
    assert percentile_bound([1.0] * 28, 0.9) is None
    assert percentile_bound([float(i) for i in range(29)], 0.9) == 28.0


def test_the_point_estimate_is_the_reports_rank():
    assert percentile_point([5.0, 1.0, 3.0, 2.0, 4.0], 0.5) == 3.0
    assert percentile_point([float(i) for i in range(100)], 0.99) == 99.0
    assert percentile_point([], 0.5) is None


def test_a_lucky_median_with_a_slow_tail_of_three_percent_fails_its_p99_bound_and_passes_its_point():
    # 600 requests: 97 % at 100 ms, 3 % at 900 ms; the p99 point is already in the tail, and so is its bound
    samples = [100.0] * 582 + [900.0] * 18
    assert percentile_point(samples, 0.5) == 100.0
    assert percentile_bound(samples, 0.99) == 900.0
    # 1 % slow: the point sits on the edge of the tail (rank 594 of 600 is fast), the bound past it
    edge = [100.0] * 595 + [900.0] * 5
    assert percentile_point(edge, 0.99) == 100.0
    assert percentile_bound(edge, 0.99) == 900.0


def test_the_error_rate_bound_with_no_failures_is_one_minus_the_nth_root_of_five_percent():
    assert proportion_bound(0, 100) == pytest.approx(1 - 0.05 ** (1 / 100))  # 0.0295
    assert proportion_bound(0, 598) <= 0.005 < proportion_bound(0, 597)
    assert proportion_bound(5, 5) == 1.0 and proportion_bound(0, 0) == 1.0


def test_the_error_rate_bound_solves_the_binomial_tail():
    # 2 failures of 50: P(Bin(50, p) <= 2) = 0.05 at p = 0.1206 (the Clopper-Pearson table value)
    bound = proportion_bound(2, 50)
    assert bound == pytest.approx(0.1206, abs=5e-4)
    tail = sum(math.comb(50, i) * bound ** i * (1 - bound) ** (50 - i) for i in range(3))
    assert tail == pytest.approx(0.05, abs=1e-6)


@pytest.mark.parametrize("n,q", [(60, 0.5), (120, 0.9), (400, 0.99)])
def test_the_percentile_bound_covers_the_true_quantile_at_least_95_percent_of_the_time(n, q):
    rng = random.Random(20261207)
    truth = -math.log(1 - q)  # the exponential(1) distribution's q-quantile
    trials = 2000
    covered = sum(percentile_bound([rng.expovariate(1.0) for _ in range(n)], q) >= truth for _ in range(trials))
    # 3 standard errors below 95 % (0.0049 at 2000 trials), and not so wide that it always covers
    assert 0.935 <= covered / trials < 0.995


def test_the_error_rate_bound_covers_the_true_rate_at_least_95_percent_of_the_time():
    rng = random.Random(7)
    rate, n, trials = 0.02, 300, 2000
    covered = sum(proportion_bound(sum(rng.random() < rate for _ in range(n)), n) >= rate for _ in range(trials))
    assert covered / trials >= 0.935


@pytest.mark.parametrize("n,q", [(60, 0.5), (120, 0.9), (400, 0.99)])
def test_the_percentile_lower_bound_stays_below_the_true_quantile_at_least_95_percent_of_the_time(n, q):
    rng = random.Random(20261208)
    truth = -math.log(1 - q)
    trials = 2000
    below = sum(percentile_lower([rng.expovariate(1.0) for _ in range(n)], q) <= truth for _ in range(trials))
    assert 0.935 <= below / trials < 0.995


def test_a_median_of_ten_is_bounded_below_by_the_second_smallest_and_a_p99_of_one_by_that_one():
    assert percentile_lower([float(i) for i in range(10, 0, -1)], 0.5) == 2.0  # P(Bin(10, .5) < 3) = 5.5 %
    assert percentile_lower([7.0], 0.99) == 7.0  # one sample is below the p99 unless it lands above: 1 %
    assert percentile_lower([1.0, 2.0, 3.0, 4.0], 0.5) is None  # even the smallest: 1/16 > 5 %


def test_the_error_rate_lower_bound_mirrors_the_upper_one():
    assert proportion_lower(0, 50) == 0.0
    lower = proportion_lower(10, 10)
    assert lower == pytest.approx(0.05 ** 0.1)  # every trial failed: p^10 = 5 %
    low = proportion_lower(3, 50)
    tail = sum(math.comb(50, i) * low ** i * (1 - low) ** (50 - i) for i in range(3, 51))
    assert tail == pytest.approx(0.05, abs=1e-6)
