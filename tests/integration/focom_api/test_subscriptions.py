"""Subscriptions of FOCOM's northbound API: the endpoints' contract, and signed, numbered, ordered notifications
of every FPR phase change and child PR transition."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from services.focom_api import schemas
from tests.integration.o2ims_api.receiver import Receiver

from .conftest import MakeSystem
from .support import problem, valid

SUBS = "/subscriptions"


def signed(raw: bytes, headers: dict[str, str], secret: str) -> bool:
    want = "sha256=" + hmac.new(bytes.fromhex(secret), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("X-Focom-Signature", ""), want)


async def test_subscription_endpoints(make_system: MakeSystem, receiver: Receiver) -> None:
    c, _ = await make_system()
    status, headers, sub = await c.call(
        "POST",
        SUBS,
        role="subscriber",
        body={"callback": receiver.url, "consumerSubscriptionId": "smo-1", "filter": "(eq,name,abc)"},
    )
    assert status == 201 and valid(schemas.SUBSCRIPTION, sub)["signingSecret"] and receiver.probes == 1
    assert headers["Location"].endswith(f"/focom/v1/subscriptions/{sub['subscriptionId']}")
    shown = {k: v for k, v in sub.items() if k != "signingSecret"}
    status, _, one = await c.call("GET", f"{SUBS}/{sub['subscriptionId']}", role="reader")
    assert status == 200 and valid(schemas.SUBSCRIPTION, one) == shown  # the secret is shown once only
    status, _, items = await c.call("GET", SUBS)
    assert status == 200 and [valid(schemas.SUBSCRIPTION, i) for i in items] == [shown]
    for body, why in (
        ({"consumerSubscriptionId": "x"}, "callback"),
        ({"callback": "http://10.1.2.3/notify"}, "allow-list"),
        ({"callback": receiver.url}, "already subscribed"),
        ({"callback": receiver.url + "2", "filter": "(eq,colour,red)"}, "colour"),
        ({"callback": receiver.url + "2", "secret": "x"}, "secret"),
    ):
        status, _, err = await c.call("POST", SUBS, body=body)
        assert status == 400 and why in problem(err, 400)["detail"], (body, err)
    status, _, err = await c.call("POST", SUBS, role="reader", body={"callback": receiver.url + "2"})
    assert status == 403 and problem(err, 403)
    status, _, err = await c.call("GET", f"{SUBS}/00000000-0000-0000-0000-000000000000")
    assert status == 404 and problem(err, 404)
    status, _, gone = await c.call("DELETE", f"{SUBS}/{sub['subscriptionId']}", role="subscriber")
    assert status == 200 and valid(schemas.SUBSCRIPTION, gone) == shown
    assert (await c.call("DELETE", f"{SUBS}/{sub['subscriptionId']}"))[0] == 404
    status, headers, err = await c.call("PATCH", SUBS)
    assert status == 405 and problem(err, 405) and "POST" in headers["Allow"]


async def test_every_transition_is_notified_in_order_signed_and_numbered(
    make_system: MakeSystem, receiver: Receiver
) -> None:
    c, focom = await make_system()
    status, _, sub = await c.call("POST", SUBS, body={"callback": receiver.url, "filter": "(eq,name,n1)"})
    assert status == 201
    assert (await c.call("POST", "/provisioningRequests", body={"name": "other", "clusterNames": ["edge"]}))[0] == 202
    assert (await c.call("POST", "/provisioningRequests", body={"name": "n1", "clusterNames": ["smo"]}))[0] == 202
    await focom.wait_phase("n1", "Creating")
    (pr,) = await focom.commands.wait(lambda: focom.prs("n1"))
    for state, stage in (
        ("pending", None),
        ("progressing", "hostprep"),
        ("progressing", "apply"),
        ("progressing", "provisioning"),
        ("fulfilled", None),
    ):
        await focom.report(pr, state, stage)
    await focom.wait_phase("n1", "Synced")

    def seen(got: list[dict[str, Any]]) -> bool:
        return any(n.get("phase") == "Synced" for n in got) and any(
            n.get("provisioningPhase") == "fulfilled" for n in got
        )

    await receiver.wait(seen)
    got = [valid(schemas.NOTIFICATION, n) for n in receiver.received]
    assert all(signed(raw, headers, sub["signingSecret"]) for raw, headers in receiver.raw)
    assert [n["sequence"] for n in got] == list(range(1, len(got) + 1))
    assert {n["name"] for n in got} == {"n1"}  # the filter kept "other" out
    assert [n["phase"] for n in got if n["kind"] == "FocomProvisioningRequest"] == ["Creating", "Synced"]
    transitions = [(n["provisioningPhase"], n["stage"]) for n in got if n["kind"] == "ProvisioningRequest"]
    assert transitions == [
        ("pending", None),
        ("progressing", "hostprep"),
        ("progressing", "apply"),
        ("progressing", "provisioning"),
        ("fulfilled", None),
    ]
    assert all(n["cluster"] == "smo" for n in got if n["kind"] == "ProvisioningRequest")
    assert all(n["subscriptionId"] == sub["subscriptionId"] for n in got)
