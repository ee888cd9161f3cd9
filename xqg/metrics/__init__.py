"""Evaluation metrics: per-query scores first, aggregates derived from them."""
