"""Benchmarks: `make bench` runs them and prints JSON (also written to bench/results.json)."""
