"""risk_metrics: each user's risk figures from their own snapshot history.

The formulas (docs/jobs.md repeats them; tests/jobs/test_risk_formulas.py
checks them against values worked out by hand):

- Daily values V_0..V_n: the total_value of the user's last snapshot of each
  UTC calendar day in the window (as_of - window_days, as_of].
- Daily returns r_i = V_i / V_(i-1) - 1, for i = 1..n (a day whose previous
  value is not positive gives no return: a ratio to zero or a negative total
  is no return).
- volatility: the sample standard deviation of the daily returns
  (n - 1 in the denominator), per day, not annualised.
- max_drawdown: the largest fall from a running peak, max over t of
  (max_(s<=t) V_s - V_t) / max_(s<=t) V_s, a fraction (0.25 = 25 %).
- var_95, var_99: historical value at risk, the loss not exceeded on 95 % / 99 %
  of the days: with the returns sorted ascending, -r_(k) where
  k = ceil((1 - c) * n) (1-based), a fraction of the portfolio's value.
  Negative when even that tail day was a gain.
- sharpe: mean(r) / stdev(r) * sqrt(252), risk-free rate 0, annualised over
  252 trading days; not written when stdev(r) is 0 (below 1e-12).

At least MIN_RETURNS returns are needed; a user with less history gets no rows.
Values are rounded to 8 decimal places (the column's scale).

Idempotent: one row per (tenant, user, metric, window_days, as_of), enforced by
the unique constraint `risk_metrics_natural_key`.
"""

from __future__ import annotations

import math
import statistics
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from trading.models import Metric, PortfolioSnapshot, RiskMetric

MIN_RETURNS = 2
TRADING_DAYS = 252
SCALE = Decimal("0.00000001")


def daily_values(snapshots: Sequence[tuple[datetime, Decimal]]) -> list[Decimal]:
    """(taken_at, total_value) in any order -> the last value of each UTC day, oldest first."""
    last_of_day: dict[date, tuple[datetime, Decimal]] = {}
    for taken_at, value in snapshots:
        day = taken_at.astimezone(UTC).date()
        if day not in last_of_day or taken_at > last_of_day[day][0]:
            last_of_day[day] = (taken_at, value)
    return [value for _, (_, value) in sorted(last_of_day.items())]


def daily_returns(values: Sequence[Decimal | float]) -> list[float]:
    return [float(v) / float(prev) - 1 for prev, v in zip(values, values[1:], strict=False) if prev > 0]


def volatility(returns: Sequence[float]) -> float:
    return statistics.stdev(returns)


def max_drawdown(values: Sequence[Decimal | float]) -> float:
    peak = float("-inf")
    worst = 0.0
    for value in map(float, values):
        peak = max(peak, value)
        if peak > 0:
            worst = max(worst, (peak - value) / peak)
    return worst


def historical_var(returns: Sequence[float], confidence: float) -> float:
    ordered = sorted(returns)
    k = max(1, math.ceil(round((1 - confidence) * len(ordered), 9)))
    return -ordered[k - 1]


def sharpe(returns: Sequence[float]) -> float | None:
    deviation = statistics.stdev(returns)
    if deviation < 1e-12:  # float noise of equal returns is no deviation
        return None
    return statistics.fmean(returns) / deviation * math.sqrt(TRADING_DAYS)


def metrics_from_values(values: Sequence[Decimal]) -> dict[str, float]:
    """Metric name -> value for one user's daily values; {} with too little history."""
    returns = daily_returns(values)
    if len(returns) < MIN_RETURNS:
        return {}
    figures = {
        Metric.VOLATILITY: volatility(returns),
        Metric.MAX_DRAWDOWN: max_drawdown(values),
        Metric.VAR_95: historical_var(returns, 0.95),
        Metric.VAR_99: historical_var(returns, 0.99),
    }
    ratio = sharpe(returns)
    if ratio is not None:
        figures[Metric.SHARPE] = ratio
    return {str(name): value for name, value in figures.items()}


@dataclass(frozen=True)
class RiskRun:
    users: int
    created: int
    too_little_history: int

    def as_dict(self) -> dict[str, int]:
        return {"users": self.users, "created": self.created, "too_little_history": self.too_little_history}


def compute_risk_metrics(as_of: datetime, window_days: int = 30) -> RiskRun:
    """RiskMetric rows for every user of the current tenant with enough snapshot history."""
    history: dict[uuid.UUID, list[tuple[datetime, Decimal]]] = {}
    # Only the job's snapshots: a hand-typed one is not history (jobs.portfolio).
    rows = PortfolioSnapshot.objects.filter(
        taken_at__gt=as_of - timedelta(days=window_days), taken_at__lte=as_of, computed=True
    ).values_list("tenant_id", "user_id", "taken_at", "total_value")
    tenant_of: dict[uuid.UUID, uuid.UUID] = {}
    for tenant_id, user_id, taken_at, total in rows:
        history.setdefault(user_id, []).append((taken_at, total))
        tenant_of[user_id] = tenant_id
    done = set(
        RiskMetric.objects.filter(as_of=as_of, window_days=window_days, computed=True).values_list("user_id", "metric")
    )
    metrics = []
    short = 0
    for user_id, snapshots in history.items():
        figures = metrics_from_values(daily_values(snapshots))
        if not figures:
            short += 1
        for metric, value in figures.items():
            if (user_id, metric) in done:
                continue
            metrics.append(
                RiskMetric(
                    tenant_id=tenant_of[user_id],
                    user_id=user_id,
                    metric=metric,
                    value=Decimal(repr(value)).quantize(SCALE, rounding=ROUND_HALF_EVEN),
                    window_days=window_days,
                    as_of=as_of,
                    computed=True,
                )
            )
    # A hand-typed metric on the job's key gives way to the job's (ON CONFLICT DO UPDATE).
    RiskMetric.objects.bulk_create(
        metrics,
        update_conflicts=True,
        unique_fields=["tenant", "user", "metric", "window_days", "as_of"],
        update_fields=["value", "computed"],
    )
    return RiskRun(users=len(history), created=len(metrics), too_little_history=short)
