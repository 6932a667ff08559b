"""Text that is not UTF-8: decoded with charset-normalizer when the answer is not in doubt.

A file's bytes are UTF-8 (the common case: decoded as they are), or carry a UTF-16/32
byte-order mark, or are some legacy encoding (Latin-1 and Windows code pages in old Java
and C sources, Shift_JIS and GB2312 in Asian projects). charset-normalizer ranks the
encodings that decode the bytes by how messy the result reads ("chaos"). Its answer is taken
when it is *confident*: the best candidate reads cleanly (chaos <= 0.1) and every candidate
that reads the bytes *differently* reads clearly worse (chaos at least 0.1 higher); candidates
that give the same text (Shift_JIS and cp932 on the same bytes) do not compete. A file with a
few non-ASCII bytes often fits several code pages equally well (Finnish "v\xe4\xe4r\xe4"
reads cleanly as Latin-1 and as Mac Icelandic "v\u2030\u2030r\u2030"): it is not decoded,
since a wrong guess would put wrong text in the corpus. Such files stay dropped as
``invalid_utf8``, with what the detector said. (Coherence, charset-normalizer's language
fit, measures the mostly-ASCII code around those bytes, so it is not used.)
"""
from __future__ import annotations

from typing import NamedTuple

MAX_CHAOS = 0.1
MARGIN = 0.1     # how much messier every differently-decoding candidate must read
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
    text = str(best)
    if best.chaos > MAX_CHAOS:
        return Decoded(None, f"best guess {best.encoding} reads badly "
                             f"(chaos {best.chaos:.2f})", False)
    rivals = [r.encoding for r in results
              if r.chaos < best.chaos + MARGIN and r.encoding != best.encoding and str(r) != text]
    if rivals:
        return Decoded(None, f"{best.encoding} and {', '.join(rivals[:3])} read cleanly "
                             "and differ", False)
    return Decoded(text, best.encoding, True)
