"""The one envelope every message travels in, and its encoding.

``Envelope.type`` names the payload model (the discriminator of the payload union), ``id`` is
also the ``Nats-Msg-Id`` so JetStream drops duplicates, and ``derive_id`` gives handlers
deterministic ids so that re-running a handler re-publishes the *same* message rather than
a new one.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from shared.errors import InputError
from shared.fields import CorrelationId, MessageType, SourceName
from shared.payloads import (
    ByoHostSummary,
    CapiApplied,
    CapiDeleted,
    CapiFailed,
    CapiJob,
    ClusterSummary,
    ClusterTransition,
    FocomDecision,
    FocomRequest,
    FprStatus,
    HostprepDone,
    HostprepFailed,
    HostprepJob,
    HostProgress,
    MessageFailed,
    PrDeadline,
    PrRequest,
    PrStatus,
)

SCHEMA_VERSION = 1
#: Envelopes larger than this are refused before decoding (a CNI manifest never travels).
MAX_MESSAGE_BYTES = 1024 * 1024
_ID_NAMESPACE = uuid.UUID("6f1c2a5e-8d0b-4c1e-9a57-0b2f6c1d9e40")

AnyPayload = Annotated[
    MessageFailed
    | FocomRequest
    | FocomDecision
    | FprStatus
    | PrRequest
    | PrStatus
    | PrDeadline
    | HostprepJob
    | HostProgress
    | HostprepDone
    | HostprepFailed
    | CapiJob
    | CapiApplied
    | CapiDeleted
    | CapiFailed
    | ClusterSummary
    | ClusterTransition
    | ByoHostSummary,
    Field(discriminator="type"),
]


#: Every payload type (the discriminator values of ``AnyPayload``).
PAYLOAD_TYPES = frozenset(
    t for p in get_args(get_args(AnyPayload)[0]) for t in get_args(p.model_fields["type"].annotation)
)


def derive_id(*parts: object) -> uuid.UUID:
    """A UUIDv5 from the given parts: the same inputs always give the same message id."""
    return uuid.uuid5(_ID_NAMESPACE, "\x1f".join(str(p) for p in parts))


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """Metadata around one payload; frozen, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: MessageType
    schema_version: int = SCHEMA_VERSION
    #: The FOCOM request (FPR) this message ultimately serves, for tracing a whole flow.
    correlation_id: CorrelationId = ""
    #: The id of the message that caused this one.
    causation_id: uuid.UUID | None = None
    #: When the sender says it happened: informative only. Receivers order and time things by
    #: when the bus received a message (``MessageContext.received_at``), never by this.
    occurred_at: datetime = Field(default_factory=utcnow)
    source: SourceName = ""
    payload: AnyPayload

    @model_validator(mode="before")
    @classmethod
    def _type_from_payload(cls, data: Any) -> Any:
        # Let callers omit ``type``: it is always the payload's own.
        if isinstance(data, dict) and "type" not in data:
            payload = data.get("payload")
            ptype = payload.get("type") if isinstance(payload, dict) else getattr(payload, "type", None)
            if ptype is not None:
                data = {**data, "type": ptype}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.type != self.payload.type:
            raise ValueError(f"envelope type {self.type!r} does not match payload type {self.payload.type!r}")
        if self.schema_version != SCHEMA_VERSION:
            raise ValueError(f"unsupported schema_version {self.schema_version} (this build speaks {SCHEMA_VERSION})")
        return self

    @classmethod
    def wrap(
        cls,
        payload: Any,
        *,
        source: str,
        correlation_id: str = "",
        cause: Envelope | None = None,
        id: uuid.UUID | None = None,
    ) -> Envelope:
        """Build an envelope; ``cause`` fills causation and correlation from the causing message."""
        return cls(
            id=id or uuid.uuid4(),
            type=payload.type,
            correlation_id=correlation_id or (cause.correlation_id if cause else ""),
            causation_id=cause.id if cause else None,
            source=source,
            payload=payload,
        )

    def encode(self) -> bytes:
        return self.model_dump_json().encode()


_ENVELOPE = TypeAdapter(Envelope)


def decode(data: bytes) -> Envelope:
    """Parse and validate an envelope; any problem is an ``InputError`` naming the field."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise InputError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}", reason="MessageTooLarge")
    try:
        return _ENVELOPE.validate_json(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        path = field_path(first["loc"])
        raise InputError(
            f"invalid envelope: {path or '<root>'}: {first['msg']} ({exc.error_count()} error(s))",
            path=path,
            reason="InvalidMessage",
        ) from None


def field_path(loc: tuple[int | str, ...]) -> str:
    """A validation error's location as a dotted path: ``payload.namespace``, not ``payload.hostprep.job.namespace``."""
    parts = [str(p) for p in loc]
    if len(parts) >= 2 and parts[0] == "payload" and parts[1] in PAYLOAD_TYPES:
        del parts[1]  # the discriminator's tag: which union member was validated
    return ".".join(parts)


def envelope_json_schema() -> dict[str, Any]:
    """The JSON schema of the envelope and every payload (snapshotted by a test)."""
    return _ENVELOPE.json_schema()
