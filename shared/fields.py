"""Constrained string types for everything that travels on the bus, and the helper that makes text fit them.

Every payload field is one of these (or a type from ``shared.models``): an identifier is ASCII, has
a pattern matched against the whole string and a length limit, so a newline, a zone id, a
homoglyph or a megabyte of text is refused when the envelope is decoded, before any handler runs.
Free text (messages, reasons, stderr tails) may hold any printable character, newline and tab
included, but no other control character (no carriage return, escape, NUL, C1 controls, Unicode
line separators or bidirectional overrides), so nothing read from the bus can rewrite a terminal,
a log line or a file. Producers that relay foreign text (a host's stderr, a CR's failure message)
pass it through ``printable`` first. Patterns use ``[0-9]`` and explicit ASCII classes, never ``\\d``
or ``\\w`` (which also match other scripts' digits and letters).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import StringConstraints

from shared.models import DNS1123_LABEL, MAX_CLUSTER_NAME, ClusterName, HostId, Namespace

__all__ = [
    "ApiVersion",
    "ClusterName",
    "ClusterNameOrEmpty",
    "CorrelationId",
    "DurableName",
    "FprName",
    "HostId",
    "K8sVersion",
    "Kind",
    "Line",
    "MessageType",
    "MessageUuid",
    "Namespace",
    "ObjectName",
    "PrId",
    "Reason",
    "SourceName",
    "StepName",
    "Subject",
    "TemplateName",
    "TemplateVersion",
    "Text",
    "Token",
    "printable",
]

#: Control characters no bus string may hold (newline and tab are added for single-line fields):
#: C0 but TAB/LF, DEL and C1, Unicode line/paragraph separators, bidirectional embeddings,
#: overrides and isolates.
_FORBIDDEN_IN_TEXT = "\\x00-\\x08\\x0B-\\x1F\\x7F-\\x9F\\u2028\\u2029\\u202A-\\u202E\\u2066-\\u2069"
_TEXT = f"^[^{_FORBIDDEN_IN_TEXT}]*$"
_LINE = f"^[^\\x09\\x0A{_FORBIDDEN_IN_TEXT}]*$"
_FORBIDDEN = re.compile(f"[{_FORBIDDEN_IN_TEXT}]")
#: Longest free text on the bus: an error message or a 10-line stderr tail, cut by ``printable``.
MAX_TEXT = 4096
MAX_LINE = 256

_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
#: A Kubernetes object name (DNS-1123 subdomain): what the API server accepts for any object we may observe.
_DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def _s(pattern: str, max_length: int, min_length: int = 1) -> StringConstraints:
    return StringConstraints(pattern=pattern, min_length=min_length, max_length=max_length)


# ── free text ─────────────────────────────────────────────────────────────────────────

#: Printable text, possibly several lines (messages, stderr tails); never spliced into a host file or command.
Text = Annotated[str, _s(_TEXT, MAX_TEXT, 0)]
#: Printable text on one line (phases, condition reasons, subjects, JSON paths).
Line = Annotated[str, _s(_LINE, MAX_LINE, 0)]


def printable(value: object, limit: int = MAX_TEXT, *, single_line: bool = False) -> str:
    """``value`` as text that fits ``Text`` (or ``Line``): forbidden characters escaped, cut to ``limit``.

    For producers that relay text they did not write (a host's stderr, a CR's message, an exception).
    """
    text = str(value)
    if single_line:
        text = text.replace("\t", " ").replace("\n", " ")
    text = _FORBIDDEN.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text
    )
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"


# ── identifiers ───────────────────────────────────────────────────────────────────────

#: A ProvisioningRequest id: a canonical (lower-case) UUID, also a KV key and a subject token.
PrId = Annotated[str, _s(_UUID, 36, 36)]
#: An envelope or message id (``message.failed`` names the message it reports).
MessageUuid = PrId
#: A cluster name, or empty where a record no longer names its cluster.
ClusterNameOrEmpty = Annotated[str, _s(f"^({DNS1123_LABEL.strip('^$')})?$", MAX_CLUSTER_NAME, 0)]
#: A FOCOM provisioning request (FPR) name: a DNS-1123 label, also a subject token and a label value.
FprName = Annotated[str, _s(DNS1123_LABEL, 63)]
#: The name of any Kubernetes object we may observe (DNS-1123 subdomain).
ObjectName = Annotated[str, _s(_DNS1123_SUBDOMAIN, 253)]
#: A label value or an object name (e.g. who claimed a ByoHost).
Token = Annotated[str, _s(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", 253)]
#: ``vX.Y.Z`` as ``shared.models.normalize_version`` writes it.
K8sVersion = Annotated[str, _s(r"^v[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,6}$", 20)]
TemplateName = Annotated[str, _s(DNS1123_LABEL, 63)]
TemplateVersion = Annotated[str, _s(r"^v?[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,6}$", 20)]
#: A machine-readable reason (``HostUnreachable``, a Kubernetes status reason).
Reason = Annotated[str, _s(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$", 128)]
#: A hostprep recipe step (``preflight``, ``agent-binary``, ``prepare``).
StepName = Annotated[str, _s(r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$", 64)]
#: A payload ``type`` (``hostprep.job``).
MessageType = Annotated[str, _s(r"^[a-z0-9]+([._][a-z0-9]+)*$", 64)]
#: A JetStream durable consumer name.
DurableName = Annotated[str, _s(r"^[A-Za-z0-9_-]+$", 64)]
#: A NATS subject (no whitespace, no control characters; tokens of printable ASCII).
Subject = Annotated[str, _s(r"^[!-~]+$", MAX_LINE)]
#: The service (or tool) that sent an envelope; may be empty.
SourceName = Annotated[str, _s(r"^[A-Za-z0-9_.:-]*$", 64, 0)]
#: What a flow is correlated by (an FPR name in practice); may be empty.
CorrelationId = Annotated[str, _s(r"^[A-Za-z0-9_.:/-]*$", 253, 0)]
#: ``<group>/<version>`` or ``v1``.
ApiVersion = Annotated[
    str,
    _s(
        r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?v[0-9]+"
        r"((alpha|beta)[0-9]+)?$",
        253,
    ),
]
Kind = Annotated[str, _s(r"^[A-Z][A-Za-z0-9]*$", 63)]

#: At most this many hosts in one job or result (the inventory's host limit).
MAX_HOSTS = 20_000
