"""Syntax-aware FIM split points: the middle is one whole tree-sitter node.

CodeGemma's cards mention splitting at "syntactically natural" points (details unpublished).
Here a split picks, uniformly, one node among the statements, blocks, expressions,
definitions and declarations of the file's parse tree and makes its exact span the middle,
so the model learns to complete whole constructs the way an editor asks for them. Files whose
language has no grammar, or whose tree offers no candidate, fall back to uniform splits.
"""
from __future__ import annotations

import re

import numpy as np
from tree_sitter import Query, QueryCursor

from fimpack.packing.parsing import has_parser, parse_tree, parser_for

# Node types worth masking as a unit, across the eight grammars.
CANDIDATE = re.compile(r"statement|block|expression|definition|declaration|clause|_item$|"
                       r"^body$|arguments$|parameters$|^call$|^assignment$|initializer")
MAX_NODES = 20_000  # enough candidates from a huge file without walking all of it


_QUERIES: dict[str, Query | None] = {}


def candidate_query(language: str) -> Query | None:
    """One query capturing every node type of LANGUAGE's grammar that CANDIDATE matches: the
    tree is searched in C, and Python touches the candidates only (walking every node in
    Python cost more than parsing)."""
    if language not in _QUERIES:
        lang = parser_for(language)[0].language
        kinds = sorted({lang.node_kind_for_id(i) for i in range(lang.node_kind_count)
                        if lang.node_kind_is_named(i) and lang.node_kind_is_visible(i)
                        and not lang.node_kind_for_id(i).startswith("_")
                        and CANDIDATE.search(lang.node_kind_for_id(i))})
        _QUERIES[language] = (Query(lang, "[" + " ".join(f"({k})" for k in kinds) + "] @c")
                              if kinds else None)
    return _QUERIES[language]


def candidate_spans(content: str, language: str) -> list[tuple[int, int]]:
    """Character spans [start, end) of the candidate nodes of CONTENT, in tree order (a node
    before its descendants, siblings left to right), without duplicate spans."""
    if not has_parser(language) or not content or candidate_query(language) is None:
        return []
    data = content.encode("utf-8")
    root = parse_tree(content, language).root_node
    nodes = QueryCursor(candidate_query(language)).captures(root).get("c", [])
    spans = {(n.start_byte, n.end_byte) for n in nodes
             if n.end_byte > n.start_byte and not n.has_error and n != root}
    # (start, -end) order is tree order: an ancestor starts no later and ends no earlier.
    spans = sorted(spans, key=lambda se: (se[0], -se[1]))[:MAX_NODES]
    if len(data) != len(content):  # byte offsets -> character offsets
        lead = (np.frombuffer(data, dtype=np.uint8) & 0xC0) != 0x80  # first byte of a char
        chars = np.concatenate([[0], np.cumsum(lead)])
        spans = [(int(chars[s]), int(chars[e])) for s, e in spans]
    return spans
