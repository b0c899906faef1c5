"""The O2IMS API on the sandbox: provisioning through ``P/provisioningRequests`` and alarms from real faults.

One PR is created through the API and followed to FULFILLED; its cluster appears under
``deploymentManagers`` (with the admin profile from the cluster's kubeconfig Secret); it is deleted,
shows DELETING, then 404, and its hosts are free again. Another PR names a host whose SSH host key
changed: it FAILS, which raises a ProvisioningFailed and a HostKeyChanged alarm; once the host is
repaired, a PUT of the same request retries it to FULFILLED and both alarms clear. Every body is
checked against the API's JSON Schemas.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from o2ctl import stack as o2stack
from services.o2ims_api import schemas
from shared.httpapi.auth import issue_token
from tests.e2e.harness import Stack, StackOptions, eventually

pytestmark = pytest.mark.e2e

I = "/o2ims-infrastructureInventory/v1"  # noqa: E741 - the prefix names of the O2IMS documents
M = "/o2ims-infrastructureMonitoring/v1"
PRS = "/o2ims-infrastructureProvisioning/v1/provisioningRequests"
OPTIONS = StackOptions(clusters=1, hosts_per_cluster=2, spare_hosts=4, faults={"host-006": "wrong_host_key"})


def valid(schema: dict[str, Any], body: Any) -> Any:
    errors = list(Draft202012Validator(schema, format_checker=FormatChecker()).iter_errors(body))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]
    return body


def request(pr_id: str, name: str, master: str, worker: str, vip: str) -> dict[str, Any]:
    return {
        "provisioningRequestId": pr_id,
        "name": name,
        "description": f"{name} through the O2IMS API",
        "templateName": "byoh-workload-cluster",
        "templateVersion": "v1.0.0",
        "templateParameters": {
            "clusterName": name,
            "k8sVersion": "v1.31.4",
            "controlPlaneEndpoint": vip,
            "cni": o2stack.SANDBOX_CNI,
            "hosts": {"masters": [{"hostId": master}], "workers": [{"hostId": worker}]},
        },
    }


class Client:
    def __init__(self, session: aiohttp.ClientSession, state: Path) -> None:
        self.session = session
        self.base = o2stack.api_url(state) or ""
        key = (state / "o2ims-api" / "signing-key.pem").read_bytes()
        self.token = issue_token(key, issuer=o2stack.API_ISSUER, audience=o2stack.API_AUDIENCE)

    async def call(self, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
        hdrs = {"Authorization": f"Bearer {self.token}", **headers}
        async with self.session.request(method, self.base + path, json=body, headers=hdrs) as resp:
            text = await resp.text()
            return resp.status, json.loads(text) if text else None

    async def phase(self, pr_id: str) -> str | int:
        status, body = await self.call("GET", f"{PRS}/{pr_id}")
        return valid(schemas.PR_INFO, body)["status"]["provisioningPhase"] if status == 200 else status  # type: ignore[no-any-return]

    async def active_alarms(self) -> dict[str, dict[str, Any]]:
        status, body = await self.call("GET", f"{M}/alarms")
        assert status == 200
        return {a["extensions"]["alarmName"]: valid(schemas.ALARM, a) for a in body if a["perceivedSeverity"] != 5}


async def test_provisioning_and_alarms_through_the_o2ims_api(tmp_path: Path) -> None:
    async with Stack(tmp_path / "stack", OPTIONS) as stack, aiohttp.ClientSession() as session:
        api = Client(session, stack.state)
        good, bad = str(uuid.uuid4()), str(uuid.uuid4())
        status, created = await api.call("POST", PRS, request(good, "api-good", "host-003", "host-004", "127.0.210.1"))
        assert status == 201, created
        valid(schemas.PR_INFO, created)
        status, failing = await api.call("POST", PRS, request(bad, "api-bad", "host-006", "host-005", "127.0.210.2"))
        assert status == 201, failing

        async def phase_is(pr_id: str, wanted: str) -> bool:
            return await api.phase(pr_id) == wanted

        await eventually(lambda: phase_is(bad, "FAILED"), 120, "the PR on the changed host key to fail")
        alarms = await eventually(lambda: _with(api, {"ProvisioningFailed", "HostKeyChanged"}), 60, "alarms")
        assert alarms["ProvisioningFailed"]["extensions"]["details"]["provisioningRequestId"] == bad
        assert alarms["HostKeyChanged"]["extensions"]["details"]["hostId"] == "host-006"

        await eventually(lambda: phase_is(good, "FULFILLED"), 240, "the PR to be fulfilled")
        _, info = await api.call("GET", f"{PRS}/{good}")
        cluster_id = info["provisionedResourceSet"]["nodeClusterId"]
        status, managers = await api.call("GET", f"{I}/deploymentManagers?all_fields")
        assert status == 200
        (dm,) = [valid(schemas.DEPLOYMENT_MANAGER, m) for m in managers if m["deploymentManagerId"] == cluster_id]
        assert dm["name"] == "api-good" and dm["serviceUri"] == "https://127.0.210.1:6443"
        assert dm["extensions"]["profileName"] == "native_k8sapi"
        assert dm["extensions"]["profileData"]["cluster_api_endpoint"].startswith("https://")

        # The host is repaired (the trusted key is presented again); a PUT of the same request retries it.
        faults = stack.state / "faults.json"
        faults.write_text(json.dumps({"host-006": None}))
        pid = stack.child("hosts").pid
        assert pid is not None
        os.kill(pid, signal.SIGHUP)
        status, body = await api.call(
            "PUT", f"{PRS}/{bad}", request(bad, "api-bad", "host-006", "host-005", "127.0.210.2")
        )
        assert status == 200, body
        await eventually(lambda: phase_is(bad, "FULFILLED"), 240, "the repaired PR to be fulfilled")
        await eventually(lambda: _without(api, {"ProvisioningFailed", "HostKeyChanged"}), 60, "alarms to clear")

        status, body = await api.call("DELETE", f"{PRS}/{good}")
        assert status == 202 and body["status"]["provisioningPhase"] == "DELETING"
        assert await api.phase(good) == "DELETING"
        await eventually(lambda: _is_gone(api, good), 180, "the deleted PR to be gone")
        _, managers = await api.call("GET", f"{I}/deploymentManagers")
        assert cluster_id not in [m["deploymentManagerId"] for m in managers]
        # o2ims releases the leases before it writes the tombstone: gone means the hosts are free already.
        leases = await stack.leases()
        assert "host-003" not in leases and "host-004" not in leases, leases


async def _with(api: Client, names: set[str]) -> dict[str, dict[str, Any]] | None:
    found = await api.active_alarms()
    return found if names <= set(found) else None


async def _without(api: Client, names: set[str]) -> bool:
    return not names & set(await api.active_alarms())


async def _is_gone(api: Client, pr_id: str) -> bool:
    return await api.phase(pr_id) == 404
