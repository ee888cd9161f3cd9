"""Rerunnable benchmarks (speed and accuracy against a baseline measured in the same run)."""
