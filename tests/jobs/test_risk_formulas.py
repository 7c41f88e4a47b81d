"""The risk formulas (jobs/risk.py) against values worked out by hand."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from jobs import risk

# 100 -> 110 -> 99 -> 108.9 -> 98.01: returns +10 %, -10 %, +10 %, -10 %.
SAW = [Decimal("100"), Decimal("110"), Decimal("99"), Decimal("108.9"), Decimal("98.01")]
# 100 -> 101 -> 103.02 -> 106.1106: returns 1 %, 2 %, 3 %.
CLIMB = [Decimal("100"), Decimal("101"), Decimal("103.02"), Decimal("106.1106")]


def test_daily_returns():
    assert risk.daily_returns(SAW) == pytest.approx([0.1, -0.1, 0.1, -0.1])
    assert risk.daily_returns(CLIMB) == pytest.approx([0.01, 0.02, 0.03])
    # A day after a non-positive value gives no return.
    assert risk.daily_returns([Decimal(0), Decimal(5), Decimal(10)]) == pytest.approx([1.0])


def test_volatility_is_the_sample_standard_deviation():
    # mean 0; squares sum to 4 * 0.01 = 0.04; / (n - 1 = 3); sqrt -> 0.11547005
    assert risk.volatility([0.1, -0.1, 0.1, -0.1]) == pytest.approx(math.sqrt(0.04 / 3))
    assert risk.volatility([0.01, 0.02, 0.03]) == pytest.approx(0.01)


def test_max_drawdown_is_the_largest_fall_from_a_running_peak():
    # peak 110, lowest after it 98.01: (110 - 98.01) / 110 = 0.109
    assert risk.max_drawdown(SAW) == pytest.approx(0.109)
    assert risk.max_drawdown(CLIMB) == 0.0
    # a later, deeper fall from a higher peak wins: 200 -> 120 is 40 %
    assert risk.max_drawdown([100, 80, 200, 120, 150]) == pytest.approx(0.4)


def test_historical_var_takes_the_ceil_of_the_tail_count():
    returns = [-0.05, -0.04, -0.03] + [0.0] * 37  # n = 40
    # 95 %: ceil(0.05 * 40) = 2nd worst -> 0.04 (0.05 * 40 is 2.0000000000000018 in floats: rounded first)
    assert risk.historical_var(returns, 0.95) == pytest.approx(0.04)
    # 99 %: ceil(0.01 * 40) = ceil(0.4) = 1st worst -> 0.05
    assert risk.historical_var(returns, 0.99) == pytest.approx(0.05)
    assert risk.historical_var([0.1, -0.1, 0.1, -0.1], 0.95) == pytest.approx(0.1)
    # every day a gain: the "loss" is negative
    assert risk.historical_var([0.01, 0.02, 0.03], 0.95) == pytest.approx(-0.01)


def test_sharpe_is_annualised_mean_over_stdev_with_no_risk_free_rate():
    # mean 0.02 / stdev 0.01 * sqrt(252) = 2 * 15.8745079 = 31.7490158
    assert risk.sharpe([0.01, 0.02, 0.03]) == pytest.approx(31.74901573)
    assert risk.sharpe([0.1, -0.1, 0.1, -0.1]) == pytest.approx(0.0)
    assert risk.sharpe([0.01, 0.01, 0.01]) is None  # no deviation: undefined, not infinite


def test_daily_values_keep_the_last_snapshot_of_each_utc_day():
    day = datetime(2026, 11, 1, tzinfo=UTC)
    snapshots = [
        (day + timedelta(hours=9), Decimal("1")),
        (day + timedelta(hours=21), Decimal("2")),  # last of Nov 1
        (day + timedelta(days=1, hours=1), Decimal("3")),
        (day + timedelta(hours=12), Decimal("9")),  # out of order, not the last
    ]
    assert risk.daily_values(snapshots) == [Decimal("2"), Decimal("3")]


def test_metrics_need_two_returns_and_leave_out_an_undefined_sharpe():
    assert risk.metrics_from_values(SAW[:2]) == {}
    figures = risk.metrics_from_values(SAW)
    assert set(figures) == {"volatility", "max_drawdown", "var_95", "var_99", "sharpe"}
    flat = risk.metrics_from_values([Decimal(100), Decimal(101), Decimal("102.01")])  # +1 %, +1 %
    assert "sharpe" not in flat and flat["volatility"] == pytest.approx(0.0)
