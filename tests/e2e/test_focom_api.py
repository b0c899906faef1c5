"""FOCOM's northbound API on the sandbox: plan, create, notifications across kill -9, delete; change control.

A subscriber (a local HTTP receiver) is subscribed before anything happens. ``POST /plans`` shows the
request feasible; ``POST /provisioningRequests`` runs an ``allClusters`` request to Synced while the API
service and then focom are killed with SIGKILL (and restarted by the supervisor). The subscriber must
have received every FPR phase change and every child PR transition that o2ims published (compared with
the ``o2ims.status`` messages on the stream, in order per cluster), each with a valid signature, with
``sequence`` 1, 2, 3, … without gaps. ``DELETE`` runs the request to gone. Under change control nothing is
leased before approval, a rejection leaves nothing behind, and the approval of a request whose hosts were
taken meanwhile fails with the conflict.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from itertools import pairwise
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from o2ctl import stack as o2stack
from services.focom_api import schemas
from shared.httpapi.auth import issue_token
from shared.messages import decode
from shared.payloads import PrStatus, pr_id_for
from tests.e2e.harness import Stack, StackOptions, eventually
from tests.integration.o2ims_api.receiver import Receiver

# A kill -9 of the API and of focom holds their in-flight messages until each ack wait (30-60 s) runs out.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

PRS = "/provisioningRequests"


def valid(schema: dict[str, Any], body: Any) -> Any:
    errors = list(Draft202012Validator(schema, format_checker=FormatChecker()).iter_errors(body))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]
    return body


class Client:
    def __init__(self, session: aiohttp.ClientSession, state: Path) -> None:
        self.session = session
        self.base = o2stack.focom_api_url(state) or ""
        key = (state / "o2ims-api" / "signing-key.pem").read_bytes()
        self.token = issue_token(key, issuer=o2stack.API_ISSUER, audience=o2stack.API_AUDIENCE)

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        hdrs = {"Authorization": f"Bearer {self.token}"}
        try:
            async with self.session.request(
                method, self.base + path, json=body, headers=hdrs, timeout=aiohttp.ClientTimeout(total=10)
            ) as resp:
                text = await resp.text()
                return resp.status, json.loads(text) if text else None
        except (aiohttp.ClientError, TimeoutError):
            return 0, None  # the API is restarting

    async def phase(self, name: str) -> str | int:
        status, body = await self.call("GET", f"{PRS}/{name}")
        return valid(schemas.PROVISIONING_REQUEST, body)["phase"] if status == 200 else status


def signed(raw: bytes, headers: dict[str, str], secret: str) -> bool:
    want = "sha256=" + hmac.new(bytes.fromhex(secret), raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers.get("X-Focom-Signature", ""), want)


async def _published(stack: Stack, pr_ids: set[str]) -> dict[str, list[tuple[str, str | None]]]:
    """Every PR transition o2ims published for ``pr_ids`` (stream order), per PR id."""
    out: dict[str, list[tuple[str, str | None]]] = {p: [] for p in pr_ids}
    async for stream, subject, data in stack.stream_messages():
        if stream != "O2IMS" or not subject.startswith("o2ims.status."):
            continue
        payload = decode(data).payload
        if isinstance(payload, PrStatus) and payload.pr_id in pr_ids:
            out[payload.pr_id].append((payload.state, payload.stage))
    return out


async def test_plan_create_notify_across_kill9_delete(tmp_path: Path) -> None:
    options = StackOptions(clusters=2, hosts_per_cluster=2)
    async with Stack(tmp_path / "stack", options) as stack, aiohttp.ClientSession() as session:
        api = Client(session, stack.state)
        receiver = await Receiver().start()
        try:
            status, sub = await api.call(
                "POST", "/subscriptions", {"callback": receiver.url, "filter": "(eq,name,e2e)"}
            )
            assert status == 201, sub
            secret = valid(schemas.SUBSCRIPTION, sub)["signingSecret"]
            status, plan = await api.call("POST", "/plans", {"name": "e2e", "allClusters": True})
            assert status == 200 and valid(schemas.PLAN, plan)["feasible"] and plan["feasibilityChecked"], plan
            assert sorted(c["spec"]["name"] for c in plan["clusters"]) == sorted(stack.clusters)
            assert await stack.leases() == {}

            status, accepted = await api.call("POST", PRS, {"name": "e2e", "allClusters": True})
            assert status == 202 and valid(schemas.ACCEPTED, accepted), accepted
            # Kill the API once notifications flow, then focom once the clusters are being prepared.
            await receiver.wait(lambda got: len(got) >= 2, timeout=120)
            await stack.kill("focom_api")
            await receiver.wait(lambda got: any(n.get("stage") in ("apply", "provisioning") for n in got), timeout=240)
            await stack.kill("focom")

            async def synced() -> bool:
                return await api.phase("e2e") == "Synced"

            await eventually(synced, 300, "the request to be Synced")
            pr_ids = {pr_id_for("e2e", c) for c in stack.clusters}

            def ordered_notes() -> list[dict[str, Any]]:
                notes: dict[str, dict[str, Any]] = {}
                for body, (raw, headers) in zip(list(receiver.received), list(receiver.raw), strict=True):
                    assert signed(raw, headers, secret), "a notification with a bad signature"
                    valid(schemas.NOTIFICATION, body)
                    # At least once: a repeat (after a kill) is the same notification, number included.
                    first = notes.setdefault(body["notificationId"], body)
                    assert first["sequence"] == body["sequence"]
                return sorted(notes.values(), key=lambda n: n["sequence"])

            def per_cluster(notes: list[dict[str, Any]]) -> dict[str, list[tuple[str, str | None]]]:
                return {
                    pr_id_for("e2e", c): [
                        (n["provisioningPhase"], n["stage"])
                        for n in notes
                        if n["kind"] == "ProvisioningRequest" and n["cluster"] == c
                    ]
                    for c in stack.clusters
                }

            seen: dict[str, Any] = {}

            async def everything_delivered() -> list[dict[str, Any]] | None:
                # Every transition o2ims published so far has arrived, and the last phase notified is the API's.
                notes = ordered_notes()
                seen["phases"] = phases = [n["phase"] for n in notes if n["kind"] == "FocomProvisioningRequest"]
                seen["phase"] = await api.phase("e2e")
                if not phases or phases[-1] != seen["phase"]:
                    return None
                seen["notified"], seen["published"] = per_cluster(notes), await _published(stack, pr_ids)
                return notes if seen["notified"] == seen["published"] else None

            try:
                ordered = await eventually(everything_delivered, 120, "every transition to be notified")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; last seen: {seen}") from None
            assert [n["sequence"] for n in ordered] == list(range(1, len(ordered) + 1))
            phases = [n["phase"] for n in ordered if n["kind"] == "FocomProvisioningRequest"]
            assert phases[0] == "Creating" and phases[-1] == "Synced", phases
            assert all(a != b for a, b in pairwise(phases)), phases  # changes only
            for transitions in per_cluster(ordered).values():
                assert transitions and transitions[-1] == ("fulfilled", None), transitions

            status, body = await api.call("DELETE", f"{PRS}/e2e")
            assert status == 202 and valid(schemas.ACCEPTED, body)

            async def gone() -> bool:
                return await api.phase("e2e") == 404

            await eventually(gone, 300, "the deleted request to be gone")
            # o2ims releases the leases before it publishes ``deleted``: gone means the hosts are free already.
            assert await stack.leases() == {}
        finally:
            await receiver.stop()


async def test_change_control(tmp_path: Path) -> None:
    options = StackOptions(clusters=2, hosts_per_cluster=2, env={"focom": {"O2_FOCOM_REQUIRE_APPROVAL": "true"}})
    async with Stack(tmp_path / "stack", options) as stack, aiohttp.ClientSession() as session:
        api = Client(session, stack.state)
        first, second = stack.clusters
        status, body = await api.call("POST", PRS, {"name": "gated", "clusterNames": [first]})
        assert status == 202, body

        async def phase_is(name: str, wanted: str | int) -> bool:
            return await api.phase(name) == wanted

        await eventually(lambda: phase_is("gated", "PendingApproval"), 60, "the request to wait for approval")
        _, waiting = await api.call("GET", f"{PRS}/gated")
        assert [p["cluster"] for p in waiting["plan"]] == [first]
        # Nothing leased, nothing prepared before approval.
        assert await stack.leases() == {} and await stack.prs() == {}
        status, body = await api.call("POST", f"{PRS}/gated/approve")
        assert status == 202, body
        await eventually(lambda: phase_is("gated", "Synced"), 300, "the approved request to be Synced")

        # A rejection leaves nothing behind.
        status, _ = await api.call("POST", PRS, {"name": "nope", "clusterNames": [second]})
        assert status == 202
        await eventually(lambda: phase_is("nope", "PendingApproval"), 60, "the second request to wait")
        status, _ = await api.call("POST", f"{PRS}/nope/reject")
        assert status == 202
        await eventually(lambda: phase_is("nope", 404), 60, "the rejected request to be gone")
        assert await stack.fpr("nope") is None
        assert pr_id_for("nope", second) not in set((await stack.leases()).values())
        assert pr_id_for("nope", second) not in await stack.prs()

        # Hosts taken meanwhile: the approval fails with the conflict and leases nothing.
        status, _ = await api.call("POST", PRS, {"name": "late", "clusterNames": [second]})
        assert status == 202
        await eventually(lambda: phase_is("late", "PendingApproval"), 60, "the third request to wait")
        status, _ = await api.call("POST", PRS, {"name": "first-come", "clusterNames": [second]})
        assert status == 202  # a different name for the same hosts: also waits, nothing held yet
        await eventually(lambda: phase_is("first-come", "PendingApproval"), 60, "the competing request to wait")
        status, _ = await api.call("POST", f"{PRS}/first-come/approve")
        assert status == 202

        async def carried_out() -> bool:
            return await api.phase("first-come") in ("Creating", "Synced")

        await eventually(carried_out, 120, "the competing request to be carried out")
        status, conflict = await api.call("POST", f"{PRS}/late/approve")
        assert status == 409 and conflict["conflicts"], conflict
        assert {c["leasedTo"] for c in conflict["conflicts"]} == {pr_id_for("first-come", second)}
        assert pr_id_for("late", second) not in set((await stack.leases()).values())
