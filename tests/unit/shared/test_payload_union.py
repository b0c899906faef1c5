"""Every payload model travels: the envelope's discriminated union names each concrete one."""

from __future__ import annotations

from typing import get_args

from shared import job_payloads, payloads
from shared.messages import AnyPayload
from shared.payloads import Payload

#: The modules that define payload models (test modules define their own, which never travel).
_PAYLOAD_MODULES = {payloads.__name__, job_payloads.__name__}


def _concrete(cls: type[Payload]) -> list[type[Payload]]:
    out: list[type[Payload]] = []
    for sub in cls.__subclasses__():
        if sub.__module__ in _PAYLOAD_MODULES:
            out.append(sub)
        out += _concrete(sub)
    return out


def test_the_union_lists_every_payload_model() -> None:
    union = set(get_args(get_args(AnyPayload)[0]))
    assert union == set(_concrete(Payload))
