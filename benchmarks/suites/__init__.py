"""Benchmark suites: each module has ``run(context) -> dict`` (see :mod:`benchmarks.runner`)."""
