"""Benchmarks of the cookbook's rendering (``make bench`` → :mod:`benchmarks.bench`)."""
