"""Benchmarks and the migration rehearsal (make bench, make rehearse).

Run as modules with scripts/ on the path: `PYTHONPATH=scripts .venv/bin/python -m bench.threeway --help`.
Raw results go to bench/out/ (git-ignored); the reports to docs/benchmarks/.
"""
