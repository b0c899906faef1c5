"""The fixed vocabulary of this O-Cloud: id derivation, resource-type keys and the alarm definitions.

Every id the API shows is a UUIDv5 of what it names, so all replicas (and restarts) agree on it
without storing it. Alarm definitions are the alarm dictionary of the resource types they apply to.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

#: Namespace of every id the O2IMS API derives.
ID_NAMESPACE = uuid.UUID("6f1d2a3e-8b4c-5d7e-9f01-23456789abcd")
VENDOR = "focom-o2ims"


def oid(*parts: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, "\x1f".join(parts)))


def pool_id(name: str) -> str:
    return oid("pool", name)


def resource_id(host_id: str) -> str:
    return oid("host", host_id)


def host_type_id(arch: str, os_name: str) -> str:
    return oid("type", "host", arch, os_name)


CLUSTER_TYPE_ID = oid("type", "workload-cluster")
SUBSCRIPTION_TYPE_ID = oid("type", "notification-subscription")

Scope = Literal["host", "cluster", "subscription"]


@dataclass(frozen=True)
class AlarmDefinition:
    key: str
    name: str
    description: str
    repair: str
    scope: Scope
    severity: int  # 0 CRITICAL, 1 MAJOR, 2 MINOR, 3 WARNING

    @property
    def id(self) -> str:
        return oid("alarm-definition", self.key)

    @property
    def probable_cause_id(self) -> str:
        return oid("probable-cause", self.key)

    def as_json(self) -> dict[str, object]:
        return {
            "alarmDefinitionId": self.id,
            "alarmName": self.name,
            "alarmDescription": self.description,
            "proposedRepairActions": self.repair,
            "alarmAdditionalFields": {"scope": self.scope},
            "alarmLastChange": "1.0",
            "alarmChangeType": "ADDED",
            "clearingType": "AUTOMATIC",
            "managementInterfaceId": ["O2IMS"],
            "pkNotificationField": ["alarmDefinitionID", "resourceID"],
            "probableCauseId": self.probable_cause_id,
            "severity": SEVERITY_NAMES[self.severity],
        }


SEVERITY_NAMES = ("CRITICAL", "MAJOR", "MINOR", "WARNING", "INDETERMINATE", "CLEARED")
CLEARED = 5

PR_FAILED = AlarmDefinition(
    "provisioning-failed",
    "ProvisioningFailed",
    "A provisioning request failed; the alarm names the stage and the reason.",
    "Read stage, reason and message in the alarm's extensions, remove the cause, then PUT the request again "
    "(it is retried) or DELETE it.",
    "cluster",
    1,
)
HOST_UNREACHABLE = AlarmDefinition(
    "host-unreachable",
    "HostUnreachable",
    "A host did not answer on its SSH port during host preparation.",
    "Check the host's power, network path and SSH daemon; the alarm clears when the host is prepared again.",
    "host",
    1,
)
HOST_KEY_CHANGED = AlarmDefinition(
    "host-key-changed",
    "HostKeyChanged",
    "A host presented an SSH host key that does not match the trusted one (possible impersonation).",
    "Verify the host out of band; if it was reinstalled, update its pinned key or known_hosts entry. The alarm "
    "clears when the host is prepared again.",
    "host",
    0,
)
BYOHOST_FAILED = AlarmDefinition(
    "byohost-failed",
    "ByoHostFailed",
    "The BYOH agent on a host reports a bootstrap failure.",
    "Read the agent's message in the alarm's extensions and the host's agent journal; the alarm clears when "
    "the ByoHost no longer reports the failure.",
    "host",
    1,
)
HOST_QUARANTINED = AlarmDefinition(
    "host-quarantined",
    "HostQuarantined",
    "A host whose teardown failed is held in quarantine and is not offered to new clusters.",
    "Clean the host by hand, then release its quarantine lease; the alarm clears with the lease.",
    "host",
    2,
)
CALLBACK_DEAD = AlarmDefinition(
    "notification-callback-dead",
    "NotificationCallbackUnreachable",
    "A subscriber's callback has refused or failed every recent notification; deliveries continue with backoff.",
    "Fix or replace the callback (DELETE the subscription and subscribe again); the alarm clears after the "
    "next successful delivery.",
    "subscription",
    3,
)

DEFINITIONS: tuple[AlarmDefinition, ...] = (
    PR_FAILED,
    HOST_UNREACHABLE,
    HOST_KEY_CHANGED,
    BYOHOST_FAILED,
    HOST_QUARANTINED,
    CALLBACK_DEAD,
)


def definitions_for(scope: Scope) -> list[AlarmDefinition]:
    return [d for d in DEFINITIONS if d.scope == scope]


def dictionary(type_id: str, scope: Scope, entity: str) -> dict[str, object]:
    return {
        "alarmDictionaryId": oid("alarm-dictionary", type_id),
        "alarmDictionaryVersion": "1.0",
        "alarmDictionarySchemaVersion": "1.0",
        "entityType": entity,
        "vendor": VENDOR,
        "managementInterfaceId": ["O2IMS"],
        "pkNotificationField": ["alarmDefinitionID", "resourceID"],
        "alarmDefinition": [d.as_json() for d in definitions_for(scope)],
    }
