"""`make bench-scale`'s pure logic (scripts/bench/scale_config.py): which configurations a run
measures, and when a database built earlier is reused instead of loaded again."""

from __future__ import annotations

import sys

import pytest

from tests.support.scratch import ROOT

sys.path.insert(0, str(ROOT / "scripts"))

from bench import data
from bench.scale_config import DEFAULT_CONFIGS, Config, ConfigError, parse_configs, reusable


def test_the_default_run_is_the_issues_four_configurations():
    configs = parse_configs(DEFAULT_CONFIGS)
    assert [(c.tenants, c.trades) for c in configs] == [
        (100, 1_000_000),
        (1_000, 1_000_000),
        (10_000, 1_000_000),
        (100, 10_000_000),
    ]
    assert len({c.database for c in configs}) == 4
    assert [c.small for c in configs] == ["bench-099", "bench-999", "bench-9999", "bench-099"]
    assert {c.whale for c in configs} == {"bench-000"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100,1000", [(100, 1_000_000), (1_000, 1_000_000)]),  # SCALE=100,1000: tenants, 1M trades
        ("100x10m", [(100, 10_000_000)]),
        (" 100X500k , 100x500000 ", [(100, 500_000)]),  # the same configuration twice: once
        ("50x20000", [(50, 20_000)]),
    ],
)
def test_configurations_parse(text, expected):
    assert [(c.tenants, c.trades) for c in parse_configs(text)] == expected


@pytest.mark.parametrize("text", ["", "abc", "100x", "100x1g", "1", "1000x1k", "-5"])
def test_a_bad_configuration_is_refused_with_its_reason(text):
    with pytest.raises(ConfigError):
        parse_configs(text)


def test_other_tables_and_users_follow_the_configuration():
    p = Config(10_000, 1_000_000).parameters()
    assert p["users"] == 20_000  # at least 2 per tenant
    assert (p["orders"], p["snapshots"], p["risk_metrics"], p["signals"]) == (300_000, 100_000, 100_000, 200_000)
    assert Config(100, 10_000_000).parameters()["orders"] == 3_000_000
    assert Config(100, 1_000_000).parameters()["users"] == 1_000


def test_the_builder_records_what_the_configuration_asks_for():
    """The command line given to bench.data, parsed by bench.data, records this configuration's parameters."""
    config = Config(1_000, 2_000_000)
    parser = data.Command().create_parser("python -m bench.data", "bench_data")
    options = vars(parser.parse_args(config.data_arguments()))
    assert data.build_parameters(options) == config.parameters()
    assert set(config.parameters()) == set(data.BUILD_OPTIONS)


def test_a_database_is_reused_only_with_the_same_parameters():
    config = Config(1_000, 1_000_000)
    assert reusable(config.parameters(), config)
    assert not reusable(None, config)  # no record: never built, or a build that stopped half-way
    assert not reusable({**config.parameters(), "trades": 2_000_000}, config)
    assert not reusable({**config.parameters(), "seed": 1}, config)
    missing = dict(config.parameters())
    del missing["signals"]
    assert not reusable(missing, config)
