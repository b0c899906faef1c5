"""Every bus payload is untrusted: hostile identifiers and text are refused at decode, naming the field.

#15 item 1: identifiers on the bus were plain strings, so a newline in ``HostprepJob.namespace`` reached
the agent's root systemd unit. Every case of ``tests.hostile`` must fail to decode with an ``InputError``
whose path is the hostile field, and the untouched envelope of every payload type must decode.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.errors import InputError
from shared.fields import printable
from shared.messages import PAYLOAD_TYPES, decode
from shared.payloads import HostprepJob, MessageFailed
from tests.hostile import CASES, ISSUE_NAMESPACE, PR, Case, valid


def test_every_payload_type_has_hostile_cases() -> None:
    assert {c.type for c in CASES} == PAYLOAD_TYPES


@pytest.mark.parametrize("type_", sorted(PAYLOAD_TYPES))
def test_the_untouched_envelope_of_every_type_decodes(type_: str) -> None:
    assert decode(valid(type_)).type == type_


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_hostile_field_is_refused_and_named(case: Case) -> None:
    with pytest.raises(InputError) as info:
        decode(case.encode())
    assert info.value.reason == "InvalidMessage"
    assert info.value.path == case.path, info.value.message


def test_the_payload_from_the_issue_is_refused() -> None:
    with pytest.raises(ValidationError, match="namespace"):
        HostprepJob(
            pr_id=PR, action="prepare", cluster="c1", namespace=ISSUE_NAMESPACE, k8s_version="v1.30.2", hosts=("h1",)
        )


def test_a_failure_report_about_a_hostile_message_is_itself_valid() -> None:
    failed = MessageFailed.about(
        consumer="o2ims-events",
        subject="hostprep.events.x\u00e9\x1b",
        message_id=None,
        message_type=None,
        reason="InvalidMessage",
        error="bad \x1b[2J\r" + "e" * 9000,
        path="payload.machines.m\n.[key]",
        deliveries=1,
    )
    assert "\x1b" not in failed.error and "\r" not in failed.error and len(failed.error) <= 4096
    assert failed.subject.isascii() and "\x1b" not in failed.subject
    assert failed.path == "payload.machines.m .[key]"


def test_printable_keeps_newlines_and_tabs_in_text_only() -> None:
    assert printable("a\n\tb") == "a\n\tb"
    assert printable("a\n\tb", single_line=True) == "a  b"
    assert printable("x\u202ey\u2028") == "x\\u202ey\\u2028"
    assert printable("abcdef", 4) == "abc…"


def test_o2ctl_reports_a_hostile_request_name_as_a_usage_error() -> None:
    from o2ctl.client import UsageError, request_from_flags

    with pytest.raises(UsageError, match="name"):
        request_from_flags(name="fpr\nx", all_clusters=True, clusters=None, operation="create", file=None)
    assert request_from_flags(name=None, all_clusters=False, clusters="c001", operation="create", file=None).name
