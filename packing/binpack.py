"""Best-fit-decreasing packing of examples into training sequences.

Examples are placed longest first, each into the open sequence with the least room that still
holds it (a new sequence when none does). Best-fit packing matches concatenate-and-chunk's
efficiency without cutting documents (Ding et al. 2024, "Fewer Truncations"); nanochat
measured first-fit-decreasing at 99.7% utilisation on real data. Ties break by input index, so
the result depends only on the sizes.
"""
from __future__ import annotations

import bisect


def best_fit_decreasing(sizes: list[int], capacity: int) -> list[list[int]]:
    """Indices of SIZES grouped into bins of at most CAPACITY, in order of opening; inside a
    bin, indices ascend (the caller's order, e.g. a repository's examples in sequence)."""
    if any(s > capacity for s in sizes):
        raise ValueError("an item is larger than the capacity")
    bins: list[list[int]] = []
    room: list[tuple[int, int]] = []  # sorted (free space, bin index)
    for i in sorted(range(len(sizes)), key=lambda i: (-sizes[i], i)):
        pos = bisect.bisect_left(room, (sizes[i], -1))
        if pos < len(room):
            free, b = room.pop(pos)
        else:
            free, b = capacity, len(bins)
            bins.append([])
        bins[b].append(i)
        if free - sizes[i] > 0:
            bisect.insort(room, (free - sizes[i], b))
    return [sorted(b) for b in bins]
