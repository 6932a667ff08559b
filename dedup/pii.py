"""PII redaction: email addresses, IP addresses and secrets, replaced by placeholders.

Like BigCode's StarCoder pipeline, matches are replaced rather than files dropped:
``<EMAIL>``, ``<IP_ADDRESS>``, ``<KEY>``. Only public IP addresses are redacted (private,
loopback, link-local and documentation ranges are common in code and are no one's data), and
dotted version strings (``1.2.3.4`` right after "version", "v" or "=="), are not IPs.
Secrets are the formats with a recognisable shape: AWS access keys, GitHub/GitLab/Slack/
Stripe/Google/OpenAI tokens, PEM private keys, and long values assigned to names like
``api_key``/``secret``/``password``/``token``.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import replace

import apache_beam as beam

from fimpack.records import SourceFile, processing_error

EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}"
                   r"(?![\w-])")
IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])")
VERSION_BEFORE = re.compile(r"(?:\b\w*version\w*|\bver|\bv)\s*[:=]?\s*[\"']?$|(?:==|>=|<=|~=)\s*$",
                            re.IGNORECASE)
KEYS = re.compile("|".join([
    r"\bAKIA[0-9A-Z]{16}\b",                                   # AWS access key id
    r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",                         # GitHub tokens
    r"\bglpat-[A-Za-z0-9_-]{20,}\b",                           # GitLab
    r"\bxox[abposr]-[A-Za-z0-9-]{10,}\b",                      # Slack
    r"\b[sr]k_live_[A-Za-z0-9]{20,}\b",                        # Stripe
    r"\bAIza[0-9A-Za-z_-]{35}\b",                              # Google API key
    r"\bsk-[A-Za-z0-9_-]{32,}\b",                              # OpenAI-style
    r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )?PRIVATE KEY-----",
]))
ASSIGNED_SECRET = re.compile(
    r"""(?i)\b(?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token|password|passwd)"""
    r"""\s*[:=]\s*["']([A-Za-z0-9+/_\-]{20,})["']""")

PLACEHOLDERS = {"email": "<EMAIL>", "ip": "<IP_ADDRESS>", "key": "<KEY>"}


def _public_ip(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    return ip.is_global and not ip.is_multicast


def find_pii(text: str) -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, kind) spans to redact, in order."""
    spans = [(m.start(), m.end(), "key") for m in KEYS.finditer(text)]
    spans += [(m.start(1), m.end(1), "key") for m in ASSIGNED_SECRET.finditer(text)]
    spans += [(m.start(), m.end(), "email") for m in EMAIL.finditer(text)]
    for pattern in (IPV4, IPV6):
        for m in pattern.finditer(text):
            before = text[max(0, m.start() - 12):m.start()]
            if _public_ip(m.group(0)) and not VERSION_BEFORE.search(before):
                spans.append((m.start(), m.end(), "ip"))
    spans.sort()
    out, end = [], -1
    for s, e, kind in spans:
        if s >= end:  # the first (key before email before ip at one position) wins
            out.append((s, e, kind))
            end = e
    return out


def redact(text: str) -> tuple[str, dict[str, int]]:
    """TEXT with PII replaced by placeholders, and the count of each kind replaced."""
    spans = find_pii(text)
    if not spans:
        return text, {}
    parts, counts, pos = [], {}, 0
    for s, e, kind in spans:
        parts.append(text[pos:s])
        parts.append(PLACEHOLDERS[kind])
        counts[kind] = counts.get(kind, 0) + 1
        pos = e
    parts.append(text[pos:])
    return "".join(parts), counts


class _Redact(beam.DoFn):
    def process(self, f: SourceFile):
        try:
            text, counts = redact(f.content)
        except Exception as err:  # one bad file must not stop a build
            yield beam.pvalue.TaggedOutput("drops", processing_error(f.repo, f.path, "pii", err))
            return
        yield replace(f, content=text, redactions=sum(counts.values())) if counts else f
        if counts:
            yield beam.pvalue.TaggedOutput("counts", {f"pii:{k}": v for k, v in counts.items()}
                                           | {"pii_files": 1})


class RedactPII(beam.PTransform):
    """SourceFiles -> redacted SourceFiles (main), per-file counts (``counts``) and Drops of
    files whose redaction failed (``drops``)."""

    def expand(self, files):
        return files | "Redact" >> beam.ParDo(_Redact()).with_outputs("counts", "drops",
                                                                      main="files")
