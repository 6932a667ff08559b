"""Deduplication stages: exact content dedup (and, later, MinHash-LSH near-dedup)."""
from fimpack.dedup.exact import ExactDedup, choose_keeper

__all__ = ["ExactDedup", "choose_keeper"]
