"""Which databases `make bench-scale` (bench.scale) measures, and whether one can be reused.

A configuration is a number of tenants and of trades ("100x1m": 100 tenants, 1,000,000
trades); the other tables follow the trades in the proportions of `make bench-data`
(0.3 orders, 0.1 snapshots, 0.1 risk metrics, 0.2 agent signals per trade), users are
max(1,000, 2 per tenant). bench.data gives the first tenant half of every table and the
others a Zipf share, so the whale always holds half the rows and the last tenant is the
smallest. Pure logic, no database: tests/scripts/test_bench_scale.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_SEED = 20240601
# The four: three tenant counts at the same total rows, and ten times the rows.
DEFAULT_CONFIGS = "100x1m,1000x1m,10000x1m,100x10m"
DB_PREFIX = "alphapulse_scale"
_TOKEN = re.compile(r"^(?P<tenants>\d+)(?:x(?P<trades>\d+)(?P<unit>[km]?))?$")
_UNITS = {"": 1, "k": 1_000, "m": 1_000_000}


class ConfigError(ValueError):
    """A configuration string that does not parse (the message says which part)."""


def _short(n: int) -> str:
    for suffix, unit in (("m", 1_000_000), ("k", 1_000)):
        if n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)


@dataclass(frozen=True)
class Config:
    tenants: int
    trades: int
    seed: int = DEFAULT_SEED

    @property
    def name(self) -> str:
        return f"{self.tenants}x{_short(self.trades)}"

    @property
    def database(self) -> str:
        return f"{DB_PREFIX}_t{self.tenants}_r{_short(self.trades)}"

    @property
    def whale(self) -> str:
        return "bench-000"

    @property
    def small(self) -> str:
        """The last tenant: the smallest on bench.data's Zipf curve."""
        return f"bench-{self.tenants - 1:03d}"

    def parameters(self) -> dict[str, int]:
        """What bench.data records on the database it built (bench.data.build_parameters)."""
        return {
            "tenants": self.tenants,
            "users": max(1_000, 2 * self.tenants),
            "trades": self.trades,
            "orders": self.trades * 3 // 10,
            "snapshots": self.trades // 10,
            "risk_metrics": self.trades // 10,
            "signals": self.trades // 5,
            "seed": self.seed,
        }

    def data_arguments(self) -> list[str]:
        """bench.data's command line for this configuration."""
        return [arg for key, value in self.parameters().items() for arg in (f"--{key.replace('_', '-')}", str(value))]


def parse_configs(text: str) -> list[Config]:
    """ "100,1000" (tenants, 1M trades each) or "100x10m,1000x1m"; order kept, duplicates dropped."""
    configs: list[Config] = []
    for token in (t.strip().lower() for t in text.split(",")):
        if not token:
            continue
        match = _TOKEN.match(token)
        if not match:
            raise ConfigError(f"'{token}' is not TENANTS or TENANTSxTRADES (e.g. 1000 or 100x10m)")
        tenants = int(match["tenants"])
        trades = int(match["trades"]) * _UNITS[match["unit"] or ""] if match["trades"] else 1_000_000
        if tenants < 2:
            raise ConfigError(f"'{token}': at least 2 tenants (a whale and a small one)")
        if trades < 2 * tenants:
            raise ConfigError(f"'{token}': fewer than 2 trades per tenant")
        config = Config(tenants, trades)
        if config not in configs:
            configs.append(config)
    if not configs:
        raise ConfigError("no configuration given")
    return configs


def reusable(recorded: dict[str, int] | None, config: Config) -> bool:
    """A database whose finished build recorded exactly this configuration's parameters."""
    return recorded is not None and recorded == config.parameters()
