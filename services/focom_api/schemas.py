"""JSON Schemas of every body the API returns: the contract in one place.

Filters and field selectors are checked against them (an unknown attribute is a 400), and the
contract tests validate every response body with them.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
STR_OR_NULL: Schema = {"type": ["string", "null"]}
INT: Schema = {"type": "integer", "minimum": 0}
BOOL: Schema = {"type": "boolean"}
OPEN: Schema = {"type": "object", "additionalProperties": True}
TIME: Schema = {"type": "string", "format": "date-time"}
PHASES = [
    "Pending",
    "PendingApproval",
    "Validating",
    "Creating",
    "Scaling",
    "Upgrading",
    "Synced",
    "Failed",
    "Deleting",
    "Deleted",
]
PR_PHASES = ["pending", "progressing", "fulfilled", "failed", "deleting", "deleted"]


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": sorted(required),
        "properties": {**required, **(optional or {})},
    }


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


PROBLEM = obj({"path": STR, "rule": STR, "message": STR})
PLANNED_CLUSTER = obj({"cluster": STR, "provisioningRequestId": STR, "controlPlane": array(STR), "workers": array(STR)})
CHILD = obj(
    {
        "cluster": STR,
        "provisioningRequestId": STR,
        "provisioningPhase": {"enum": PR_PHASES},
        "stage": STR_OR_NULL,
        "reason": STR_OR_NULL,
        "message": STR_OR_NULL,
        "clusterEndpoint": STR_OR_NULL,
        "kubeconfigSecret": STR_OR_NULL,
    }
)
PROVISIONING_REQUEST = obj(
    {
        "name": STR,
        "operation": {"enum": ["create", "scale", "delete", "upgrade"]},
        "generation": INT,
        "phase": {"enum": PHASES},
        "message": STR,
        "children": array(CHILD),
        "createdAt": TIME,
        "updatedAt": TIME,
    },
    {"plan": array(PLANNED_CLUSTER), "request": OPEN},
)
ACCEPTED = obj(
    {"name": STR, "operation": {"enum": ["create", "scale", "delete", "upgrade", "approve", "reject"]}, "location": STR}
)
CONFLICT = obj({"cluster": STR, "host": STR, "leasedTo": STR})
PLAN = obj(
    {
        "name": STR,
        "operation": STR,
        "valid": BOOL,
        "problems": array(PROBLEM),
        "feasible": BOOL,
        "feasibilityChecked": BOOL,
        "conflicts": array(CONFLICT),
        "clusters": array(OPEN),
        "rendered": BOOL,
        "renderedBy": STR,
    }
)
INVENTORY = {
    "type": "object",
    "required": ["namespace", "k8s_version", "hosts", "clusters"],
    "properties": {
        "namespace": STR,
        "k8s_version": STR,
        "schema_version": INT,
        "hosts": array(
            {
                "type": "object",
                "required": ["host_id", "host_name", "host_ip"],
                "not": {"anyOf": [{"required": ["host_pwd"]}, {"required": ["ssh_key_file"]}]},
                "properties": {
                    "host_id": STR,
                    "host_name": STR,
                    "host_ip": STR,
                    "host_user": STR,
                    "ssh_port": INT,
                    "labels": OPEN,
                    "credential": {"enum": ["key", "password", "agent"]},
                },
                "additionalProperties": False,
            }
        ),
        "clusters": array(OPEN),
    },
    "additionalProperties": False,
}
VALIDATION = obj({"valid": BOOL, "problems": array(PROBLEM)}, {"hosts": INT, "clusters": INT})
SUBSCRIPTION = obj(
    {"subscriptionId": STR, "consumerSubscriptionId": STR_OR_NULL, "filter": STR_OR_NULL, "callback": STR},
    {"signingSecret": STR},
)
NOTIFICATION = obj(
    {
        "notificationId": STR,
        "subscriptionId": STR,
        "consumerSubscriptionId": STR_OR_NULL,
        "kind": {"enum": ["FocomProvisioningRequest", "ProvisioningRequest"]},
        "name": STR,
        "cluster": STR_OR_NULL,
        "stage": STR_OR_NULL,
        "reason": STR_OR_NULL,
        "message": STR_OR_NULL,
        "occurredAt": TIME,
        "sequence": {"type": "integer", "minimum": 1},
    },
    {"phase": {"enum": PHASES}, "provisioningPhase": {"enum": PR_PHASES}},
)
#: What a subscription filter may name (by request name, cluster or kind).
NOTIFICATION_FILTER: Schema = obj({}, {"name": STR, "cluster": STR, "kind": STR})
