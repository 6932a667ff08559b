"""PII redaction: email addresses, IP addresses and secrets, replaced by placeholders.

Like BigCode's StarCoder pipeline, matches are replaced rather than files dropped:
``<EMAIL>``, ``<IP_ADDRESS>``, ``<KEY>``. What is *not* PII matters as much in code, and
every rule below was measured on a hand-labelled sample of real repositories
(``benchmarks/data/pii_sample.jsonl``, ``benchmarks/bench_pii.py``; BENCHMARKS.md "PII").

* Emails: not at reserved names (``example.com/.org/.net``, ``.example``, ``.invalid``,
  ``.test``, ``.localhost``, ``.local``: RFC 2606, 6761, 6762), not a URL's user-info
  (``http://user:pass@host``, ``user@host:80``), not an scp-style git/ssh remote
  (``git@github.com:org/x``), not an SSH algorithm name (``curve25519-sha256@libssh.org``),
  not a domain that is no host name (``_`` in a label, a mixed-case top level), not a module
  path (``name@host/path``, ``pkg@v1.0.0.txt``), not a cloud service account
  (``*.gserviceaccount.com``: a robot, no mailbox), not a Gmail name that Gmail does not allow
  (under 6 letters and digits: ``rob@gmail.com`` is a test fixture), not a placeholder
  (``my-project-id@...``, ``foo@``, ``a@``, ``xxx@``, ``your.name@``, ``...@mydomain.com``,
  ``...@email.com``). A ``\\u003c`` escape before an address stays (``\\u003c<EMAIL>``), so
  the string literal stays valid.
* IPs: only public unicast addresses (documentation, private, loopback, link-local,
  shared and multicast ranges are skipped; IPv6 only in 2000::/3), not a network (CIDR with
  a prefix shorter than the address), not a well-known public resolver (8.8.8.8, 1.1.1.1,
  ...: BigCode's list), not a placeholder (``1.2.3.4``, ``5.6.7.8``, ``12.34.56.78``,
  ``22.22.22.22``, ``1111:2222:...``), and not a dotted number that a version (``==2.1.0.3``,
  ``v1.2.3.4``, ``9.3.0.25-r1``), a section (``RFC 7231 §3.1.1.5``, ``section 4.2.1.2``) or an
  OID (``ObjectIdentifier("2.5.29.17")``) precedes or follows.
* Secrets: the formats with a recognisable shape (AWS access keys, GitHub/GitLab/Slack/
  Stripe/Google/OpenAI tokens, PEM and PGP private keys), long values assigned to names like
  ``api_key``/``secret``/``password``/``token`` (letters and digits, no placeholder words:
  ``your-api-key`` is not a secret) and long hex strings assigned to ``...PrivateKey...``.
  Documented examples (``...EXAMPLE...``) are not secrets.

Test fixtures are *not* exempt as such: in the sample, the quoted addresses in test files
include real people's (a Go maintainer's address in ``net/mail`` tests, an RFC 2047 example
author's), so skipping tests would lose true PII; placeholders are skipped wherever they are.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import replace

from fimpack.dedup.filters import FileFilter, Filter, Keep
from fimpack.records import SourceFile, counter_key

# Each pattern starts with what is cheap to scan for (a literal, "@", a digit, "[:=]"), and
# the left context a match needs is checked by hand at the (rare) hits: Python's re tries a
# leading look-behind or an alternation at every position, which made redaction 5x slower.
EMAIL_DOMAIN = re.compile(r"@(?:[A-Za-z0-9_-]{1,63}\.)+[A-Za-z]{2,24}(?![\w-])")
EMAIL_LOCAL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-")
IPV4 = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\w.])")
IPV6 = re.compile(r"(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}(?![\w:])")
VERSION_BEFORE = re.compile(r"(?:\b\w*version\w*|\bver|\bv)\s*[:=]?\s*[\"']?$|"
                            r"(?:[=!<>~]=|===|[<>]|@)\s*[\"']?$", re.IGNORECASE)
ESCAPED_BRACKET = re.compile(r"u00[0-9a-fA-F]{2}|x[0-9a-fA-F]{2}")  # \u003c, \x3c before it
SCP_PATH = re.compile(r"[\w.~-]*/|[\w.~/-]*\.git\b")  # org/repo.git, ~/dir/, repo.git
VERSION_AFTER = re.compile(r"[-+][A-Za-z0-9]")  # 9.3.0.25-r1, 1.0.0.0+local
VERSION_WORD = re.compile(r"\bversion\b", re.IGNORECASE)  # "the version, such as '6.0.1.0'"
NUMBERING_BEFORE = re.compile(                  # section numbers and OIDs
    r"(?:section|\bsect?\.|§|\brfc[\s:-]*\d+|\bclause|\bcf\.|\bper\b|\bwhatwg|\becma\b|"
    r"\biso\b|\boid\b|objectidentifier|object_identifier|#section-|hyperspec)[^\n]{0,20}$",
    re.IGNORECASE)
# Well-known public resolvers: services, not anyone's address (BigCode's PII pipeline's list).
PUBLIC_RESOLVERS = frozenset((
    "8.8.8.8", "8.8.4.4", "1.1.1.1", "1.0.0.1", "9.9.9.9", "149.112.112.112",
    "208.67.222.222", "208.67.220.220", "76.76.19.19", "76.223.122.150", "8.26.56.26",
    "8.20.247.20", "94.140.14.14", "94.140.15.15", "4.2.2.1", "4.2.2.2", "64.6.64.6",
    "64.6.65.6", "2001:4860:4860:0:0:0:0:8888", "2001:4860:4860:0:0:0:0:8844"))
RESERVED_DOMAIN = re.compile(r"(?:^|\.)(?:example\.(?:com|org|net)|[^.]+\.(?:example|invalid|test|"
                             r"localhost|local)|localhost)$", re.IGNORECASE)
PLACEHOLDER_LOCAL = frozenset((
    "foo", "bar", "baz", "qux", "test", "tester", "testing", "username", "someone",
    "somebody", "nobody", "hello", "unknown", "name", "email", "mail", "address", "john.doe",
    "jane.doe", "jdoe", "johndoe", "janedoe", "xyz", "abc", "your", "yourname", "you"))
PLACEHOLDER_LOCAL_START = ("my-", "my.", "my_", "your-", "your.", "your_", "test.", "test-",
                           "example", "sample", "dummy", "fake", "group-example")
PLACEHOLDER_DOMAIN = re.compile(r"example|fake|yourdomain|mydomain|personaldomain|"
                                r"yourcompany|mycompany|^(?:domain|email|company|host)\.com$",
                                re.IGNORECASE)
# Machine identities, not mailboxes: Google Cloud service accounts (robots, no inbox).
SERVICE_ACCOUNT = re.compile(r"(?:^|\.)gserviceaccount\.com$", re.IGNORECASE)
KEYS = [re.compile(p) for p in (
    r"AKIA[0-9A-Z]{16}\b",                                     # AWS access key id
    r"gh[pousr]_[A-Za-z0-9]{36,}\b",                           # GitHub tokens
    r"glpat-[A-Za-z0-9_-]{20,}\b",                             # GitLab
    r"xox[abposr]-[A-Za-z0-9-]{10,}\b",                        # Slack
    r"[sr]k_live_[A-Za-z0-9]{20,}\b",                          # Stripe
    r"AIza[0-9A-Za-z_-]{35}\b",                                # Google API key
    r"sk-[A-Za-z0-9_-]{32,}\b",                                # OpenAI-style
)]
PRIVATE_KEY = re.compile(r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY( BLOCK|)-----[\s\S]*?"
                         r"-----END \1PRIVATE KEY\2-----")
QUOTED_VALUE = re.compile(r"""[:=]\s*["'`][A-Za-z0-9+/_\-]{20,}["'`]""")
ASSIGNED_SECRET = re.compile(
    r"""(?i)\b(?:api[_-]?key|secret(?:[_-]?key)?|access[_-]?token|auth[_-]?token|password|passwd)"""
    r"""\s*[:=]\s*["'`]([A-Za-z0-9+/_\-]{20,})["'`]""")
HEX_PRIVATE_KEY = re.compile(r"""(?i)priv(?:ate)?_?key\w*\s*:?=\s*["'`]([0-9a-f]{64,})""")
PLACEHOLDER_SECRET = re.compile(r"your|example|placeholder|changeme|dummy|fake|xxxx|"
                                r"api[_-]?key|secret|token|password", re.IGNORECASE)
SECRET_NAME_REACH = 48  # characters before "=" searched for the name (and its spaces)

HEX = "0123456789abcdef"
IETF_PROTOCOL = ipaddress.IPv4Network("192.0.0.0/24")     # RFC 6890: no host's address
GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
PLACEHOLDERS = {"email": "<EMAIL>", "ip": "<IP_ADDRESS>", "key": "<KEY>"}


def _word_before(text: str, i: int, extra: str = "") -> bool:
    return i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_" or text[i - 1] in extra)


def _token_before(text: str, i: int) -> str:
    """The run of non-space, non-quote characters that ends at I (the start of a match)."""
    j = i
    while j > 0 and not text[j - 1].isspace() and text[j - 1] not in "\"'`<>()[]{},;":
        j -= 1
    return text[j:i]


def _is_email(text: str, start: int, at: int, end: int) -> bool:
    local, domain = text[start:at], text[at + 1:end]
    labels = domain.split(".")
    if RESERVED_DOMAIN.search(domain) or any("_" in label for label in labels):
        return False
    tld = labels[-1]
    if not (tld.islower() or tld.isupper()):       # m.Path@m.Version: code, not a domain
        return False
    token = _token_before(text, start)
    if "//" in token and not token.lower().startswith("mailto:"):
        return False                                # a URL's user-info or path
    if text.startswith(":", end) and (SCP_PATH.match(text, end + 1)
                                      or text[end + 1:end + 2].isdigit()):
        return False                # scp-style remote git@github.com:org/x; user@host:80
    lower = local.lower()
    if domain.lower() in ("openssh.com", "libssh.org") and "-" in lower and any(
            c.isdigit() for c in lower):
        return False                                # SSH algorithm names (RFC 4250 4.6.1)
    if (len(local) == 1 or lower in PLACEHOLDER_LOCAL or lower.startswith(PLACEHOLDER_LOCAL_START)
            or not lower.strip("x") or PLACEHOLDER_DOMAIN.search(domain)
            or SERVICE_ACCOUNT.search(domain)):
        return False
    if text.startswith("/", end) or re.match(r"v\d", labels[0]):
        return False                                # a module path or a versioned name
    if domain.lower() in ("gmail.com", "googlemail.com") and \
            len(lower.split("+")[0].replace(".", "")) < 6:
        return False                                # Gmail names are 6-30 characters
    return True


def _emails(text: str):
    """Emails: a domain after "@", then the local part: the run of address characters
    before it, 1-64 of them, not glued to a word, dot, "+" or "-" on its left."""
    for m in EMAIL_DOMAIN.finditer(text):
        at = start = m.start()
        while start > 0 and at - start <= 64 and text[start - 1] in EMAIL_LOCAL:
            start -= 1
        escape = ESCAPED_BRACKET.match(text, start) if text[start - 1:start] == "\\" else None
        if escape:  # "\u003cname@host" in JSON or Go: the escape is no part of the address
            start = escape.end()
        if (0 < at - start <= 64 and (escape or not _word_before(text, start, ".+-"))
                and _is_email(text, start, at, m.end())):
            yield start, m.end()


def _placeholder_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """1.2.3.4, 5.6.7.8, 9.8.7.6, 16.17.18.19, 1.2.3.x, 12.34.56.78, 66.55.44.33,
    22.22.22.22, 1111:2222:...:8888, 0002:0002:..., 1:2:3:4:5:6:7:8."""
    if ip.version == 4:
        parts = [int(p) for p in str(ip).split(".")]
        digits = "".join(str(p) for p in parts)
        if max(parts) < 20 or parts[3] in (0, 255) or (parts[0] < 30 and max(parts[1:3]) < 20):
            return True              # 4.2.1.3, 13.2.5.44 (sections), x.y.z.0/255 (networks)
    else:
        parts = [int(g, 16) for g in ip.exploded.split(":")]
        digits = ip.exploded.replace(":", "")
    steps = {b - a for a, b in zip(parts, parts[1:])}
    if steps <= {0} or steps == {1} or steps == {-1}:
        return True
    if ip.version == 4 and len({b - a for a, b in zip(parts[:3], parts[1:3])}) == 1 and abs(
            parts[1] - parts[0]) == 1:
        return True                                  # 1.2.3.0, 9.8.7.7: a run, then a host
    run = "".join(c for i, c in enumerate(digits) if i == 0 or c != digits[i - 1])
    if len(run) > 1 and (run in "0123456789abcdef" or run in "fedcba9876543210"):
        return True
    longest = length = 1                             # 2001:abcd:ef01:2345:6789:...
    for a, b in zip(digits, digits[1:]):
        length = length + 1 if HEX.index(b) == (HEX.index(a) + 1) % 16 else 1
        longest = max(longest, length)
    return longest >= 8


def _public_ip(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    if not ip.is_global or ip.is_multicast:
        return False
    if ip.version == 4 and ip in IETF_PROTOCOL:
        return False                                 # IETF protocol assignments
    if ip.version == 6 and ip not in GLOBAL_UNICAST_V6:
        return False                                 # unallocated, or not unicast
    return ip.exploded not in PUBLIC_RESOLVERS and str(ip) not in PUBLIC_RESOLVERS and \
        not _placeholder_ip(ip)


def _ip_in_context(text: str, s: int, e: int, glued: str) -> bool:
    """An address is an address when it is not glued to a longer number, not a network
    (CIDR shorter than the address), not a version and not a section number or OID."""
    if _word_before(text, s, glued):
        return False
    after = text[e:e + 4]
    prefix = re.match(r"/(\d+)", after)  # \d, not str.isdigit: "/²" is no prefix length
    if prefix and int(prefix.group(1)) < (32 if glued == "." else 128):
        return False
    if VERSION_AFTER.match(after):
        return False
    before = text[max(0, s - 60):s]
    line = before[before.rfind("\n") + 1:]
    if f"section-{text[s:e]}" in text[e:e + 80]:    # 4.2.1.3](...rfc5280#section-4.2.1.3)
        return False
    return not (VERSION_BEFORE.search(line) or VERSION_WORD.search(line)
                or NUMBERING_BEFORE.search(line))


def _secret_value(value: str) -> bool:
    """A credential has letters and digits and no placeholder words."""
    return (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
            and not PLACEHOLDER_SECRET.search(value))


def find_pii(text: str, path: str = "") -> list[tuple[int, int, str]]:
    """Non-overlapping (start, end, kind) spans to redact, in order. PATH (the file's) is
    accepted for rules that need it; none does now (see the module docstring)."""
    spans = [(m.start(), m.end(), "key") for pattern in KEYS for m in pattern.finditer(text)
             if not _word_before(text, m.start()) and "EXAMPLE" not in m.group(0)]
    if "-----BEGIN " in text:
        spans += [(m.start(), m.end(), "key") for m in PRIVATE_KEY.finditer(text)]
    for q in QUOTED_VALUE.finditer(text):
        m = ASSIGNED_SECRET.search(text, max(0, q.start() - SECRET_NAME_REACH), q.end())
        if m and m.end() == q.end() and _secret_value(m.group(1)):
            spans.append((m.start(1), m.end(1), "key"))
    if "riv" in text or "RIV" in text:
        spans += [(m.start(1), m.end(1), "key") for m in HEX_PRIVATE_KEY.finditer(text)]
    if "@" in text:
        spans += [(s, e, "email") for s, e in _emails(text)]
    for pattern, glued in ((IPV4, "."), (IPV6, ":")):
        for m in pattern.finditer(text):
            if _public_ip(m.group(0)) and _ip_in_context(text, m.start(), m.end(), glued):
                spans.append((m.start(), m.end(), "ip"))
    spans.sort()
    out, end = [], -1
    for s, e, kind in spans:
        if s >= end:  # the first (key before email before ip at one position) wins
            out.append((s, e, kind))
            end = e
    return out


def redact(text: str, path: str = "") -> tuple[str, dict[str, int]]:
    """TEXT with PII replaced by placeholders, and the count of each kind replaced."""
    spans = find_pii(text, path)
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


class _Redact(FileFilter):
    """Redaction as a filter that rewrites: a file with PII is kept redacted, its
    redactions counted (``pii:KIND``, and ``pii_files``); a file without passes as it is."""

    stage = "pii"

    def check(self, f: SourceFile) -> Keep | None:
        text, counts = redact(f.content, f.path)
        if not counts:
            return None
        return Keep(replace(f, content=text, redactions=sum(counts.values())),
                    {counter_key("pii", k): v for k, v in counts.items()} | {"pii_files": 1})


def RedactPII() -> Filter:
    """SourceFiles -> ``StageOut``: redacted SourceFiles, per-file redaction counts and Drops
    of files whose redaction failed (``filters.Filter``)."""
    return Filter(_Redact())
