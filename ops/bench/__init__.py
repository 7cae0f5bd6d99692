"""Baselines for benchmarks: the allocators users would pick instead of stockflow."""
