"""The base classes of every bus payload: a frozen, strict value, and a payload naming its message type.

Kept apart from the payload models so that each group of them (``shared.payloads``,
``shared.job_payloads``) can build on the same bases.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Value(BaseModel):
    """A frozen value inside a payload (not a message of its own)."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Payload(Value):
    """A message's payload: its ``type`` is the envelope type that carries it."""

    #: The message type; every concrete payload narrows it to a literal.
    type: str
