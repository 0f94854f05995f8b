"""Benchmarks that compare our pipeline with the tutorial's in the same run (python -m bench.NAME)."""
