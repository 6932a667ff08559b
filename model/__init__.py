"""The Gemma / CodeGemma decoder that trains on fimpack's token shards."""
from .gemma import (BACKENDS, FLAVORS, Gemma, GemmaConfig, attention, chunked_cross_entropy,
                    config_for, document_positions, document_runs)

__all__ = ["BACKENDS", "FLAVORS", "Gemma", "GemmaConfig", "attention", "chunked_cross_entropy",
           "config_for", "document_positions", "document_runs"]
