"""Paths and whole-file reads through Beam's filesystems (local folders, ``gs://`` and the
other schemes Beam registers), for the modules on both sides of a build's outputs: the writers
(``pipelines/outputs.py``) and the readers of an earlier build (``dedup/earlier.py``)."""
from __future__ import annotations

from apache_beam.io.filesystems import FileSystems


def join(*parts: str) -> str:
    return FileSystems.join(*parts)


def read_bytes(path: str) -> bytes:
    with FileSystems.open(path) as f:
        return f.read()
