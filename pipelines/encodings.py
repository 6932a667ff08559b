"""Text that is not UTF-8: decoded with charset-normalizer when the answer is not in doubt.

A file's bytes are UTF-8 (the common case: decoded as they are), or carry a UTF-16/32
byte-order mark, or are some legacy encoding (Latin-1 and Windows code pages in old Java
and C sources, Shift_JIS and GB2312 in Asian projects). charset-normalizer ranks the
encodings that decode the bytes by how messy the result reads ("chaos") and how well it fits
a language ("coherence"). Its answer is taken when it is *confident*: the best candidate
reads cleanly (chaos <= 0.1) and either fits a language (coherence >= 0.1) or every clean
candidate decodes to the same text (Shift_JIS vs cp932). A file of a few non-ASCII bytes
fits a dozen code pages equally and is not decoded: too short to say which one. Such files
stay dropped as ``invalid_utf8``, with what the detector said.
"""
from __future__ import annotations

from typing import NamedTuple

MAX_CHAOS = 0.1
MIN_COHERENCE = 0.1
BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


class Decoded(NamedTuple):
    text: str | None
    encoding: str        # "" for UTF-8 as read; the codec transcoded from; or why not
    confident: bool


def has_utf16_or_32_bom(data: bytes) -> bool:
    return data.startswith((b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff"))


def decode(data: bytes) -> Decoded:
    """DATA as text: UTF-8 as read, or transcoded by charset-normalizer when confident."""
    if not has_utf16_or_32_bom(data):
        try:
            return Decoded(data.decode("utf-8"), "", True)
        except UnicodeDecodeError:
            pass
    from charset_normalizer import from_bytes

    results = from_bytes(data)
    best = results.best()
    if best is None:
        return Decoded(None, "charset-normalizer found no encoding", False)
    clean = [r for r in results if r.chaos <= MAX_CHAOS]
    text = str(best)
    if best.chaos > MAX_CHAOS:
        return Decoded(None, f"best guess {best.encoding} reads badly "
                             f"(chaos {best.chaos:.2f})", False)
    if best.coherence < MIN_COHERENCE and any(str(r) != text for r in clean):
        return Decoded(None, f"{len(clean)} encodings read cleanly and differ "
                             f"(best guess {best.encoding})", False)
    return Decoded(text, best.encoding, True)
