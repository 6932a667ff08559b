"""fimpack: CodeGemma-style code pretraining corpora on Apache Beam, and a minimal trainer.

The top-level folders of the repository install as subpackages of this namespace:
``fimpack.pipelines`` (Beam wiring), ``fimpack.dedup``, ``fimpack.packing`` (the logic),
``fimpack.model`` and ``fimpack.train`` (the consumers of the shards).
"""
__version__ = "0.1.0"
