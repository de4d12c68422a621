"""Benchmarks of infocus against real data, peers and published numbers (see docs/benchmarks.md)."""
