"""Deduplication: exact content dedup and MinHash-LSH near-dedup, file- and repository-level.

``signatures`` needs no Beam; the Beam stages (``ExactDedup``, ...) load on first use so that
computing signatures in a notebook does not import the pipeline machinery.
"""
from fimpack.dedup.minhash import signatures

__all__ = ["signatures", "ExactDedup", "choose_keeper"]


def __getattr__(name):
    if name in ("ExactDedup", "choose_keeper"):
        from fimpack.dedup import exact
        return getattr(exact, name)
    raise AttributeError(name)
