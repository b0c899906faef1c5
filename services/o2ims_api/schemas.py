"""JSON Schemas of every object the API returns, written from the O2IMS field lists.

They are the API's contract in one place: filters and field selectors are checked against them
(an unknown attribute is a 400), and the contract tests validate every response body with them.
``extensions`` (and ``profileData``'s free parts) are open objects; everything else is closed.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
STR_OR_NULL: Schema = {"type": ["string", "null"]}
_UUID_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
UUID: Schema = {"type": "string", "format": "uuid", "pattern": _UUID_PATTERN}
OPEN: Schema = {"type": "object", "additionalProperties": True}
TIME: Schema = {"type": "string", "format": "date-time"}
TIME_OR_NULL: Schema = {"type": ["string", "null"], "format": "date-time"}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None) -> Schema:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": sorted(required),
        "properties": {**required, **(optional or {})},
    }


API_VERSIONS = obj(
    {
        "uriPrefix": STR,
        "apiVersions": {
            "type": "array",
            "minItems": 1,
            "items": obj({"version": STR, "isDeprecated": {"type": "boolean"}, "retirementDate": STR_OR_NULL}),
        },
    }
)

O_CLOUD = obj(
    {
        "oCloudId": UUID,
        "globalCloudId": UUID,
        "globalcloudId": UUID,
        "name": STR,
        "description": STR,
        "serviceUri": {"type": "string", "pattern": "^https?://"},
        "extensions": OPEN,
    }
)

ALARM_DEFINITION = obj(
    {
        "alarmDefinitionId": UUID,
        "alarmName": STR,
        "alarmDescription": STR,
        "proposedRepairActions": STR,
        "alarmAdditionalFields": OPEN,
        "alarmLastChange": STR,
        "alarmChangeType": STR,
        "clearingType": STR,
        "managementInterfaceId": {"type": "array", "items": STR},
        "pkNotificationField": {"type": "array", "items": STR},
        "probableCauseId": UUID,
        "severity": STR,
    }
)

ALARM_DICTIONARY = obj(
    {
        "alarmDictionaryId": UUID,
        "alarmDictionaryVersion": STR,
        "alarmDictionarySchemaVersion": STR,
        "entityType": STR,
        "vendor": STR,
        "managementInterfaceId": {"type": "array", "items": {"const": "O2IMS"}},
        "pkNotificationField": {"type": "array", "items": STR},
        "alarmDefinition": {"type": "array", "items": ALARM_DEFINITION},
    }
)

_TYPE_FIELDS: dict[str, Schema] = {
    "resourceTypeId": UUID,
    "name": STR,
    "description": STR,
    "vendor": STR,
    "model": STR,
    "version": STR,
    "resourceKind": {"enum": ["PHYSICAL", "LOGICAL", "UNDEFINED"]},
    "resourceClass": {"enum": ["COMPUTE", "NETWORKING", "STORAGE", "UNDEFINED"]},
    "extensions": OPEN,
}
RESOURCE_TYPE = obj(_TYPE_FIELDS, {"alarmDictionary": ALARM_DICTIONARY})
RESOURCE_TYPE_DETAIL = obj({**_TYPE_FIELDS, "alarmDictionary": ALARM_DICTIONARY})

RESOURCE_POOL = obj(
    {
        "resourcePoolId": UUID,
        "oCloudId": UUID,
        "globalLocationId": STR,
        "name": STR,
        "description": STR,
        "location": STR,
        "extensions": OPEN,
    }
)

RESOURCE = obj(
    {
        "resourceId": UUID,
        "resourcePoolId": UUID,
        "resourceTypeId": UUID,
        "globalAssetId": STR,
        "description": STR,
        "elements": {"type": "array", "items": OPEN},
        "extensions": OPEN,
    }
)

PROFILE_DATA = obj(
    {
        "cluster_api_endpoint": {"type": "string", "pattern": "^https://"},
        "cluster_ca_cert": STR,
        "admin_user": STR,
        "admin_client_cert": STR,
        "admin_client_key": STR,
    }
)

DEPLOYMENT_MANAGER = obj(
    {
        "deploymentManagerId": UUID,
        "oCloudId": UUID,
        "name": STR,
        "description": STR,
        "serviceUri": {"type": "string", "pattern": "^https://.+:6443$"},
        "supportedLocations": {"type": "array", "items": STR},
        "capabilities": OPEN,
        "capacity": OPEN,
        "extensions": {
            "type": "object",
            "additionalProperties": True,
            "properties": {"profileName": {"const": "native_k8sapi"}, "profileData": PROFILE_DATA},
        },
    }
)

_FILTER: Schema = {"type": ["string", "null"]}
INVENTORY_SUBSCRIPTION = obj(
    {"subscriptionId": UUID, "callback": {"type": "string", "pattern": "^https?://"}},
    {"consumerSubscriptionId": STR_OR_NULL, "filter": _FILTER},
)
ALARM_SUBSCRIPTION = obj(
    {"alarmSubscriptionId": UUID, "callback": {"type": "string", "pattern": "^https?://"}},
    {"consumerSubscriptionId": STR_OR_NULL, "filter": _FILTER},
)

ALARM = obj(
    {
        "alarmEventRecordId": UUID,
        "resourceTypeID": UUID,
        "resourceID": UUID,
        "alarmDefinitionID": UUID,
        "probableCauseID": UUID,
        "alarmRaisedTime": TIME,
        "alarmChangedTime": TIME_OR_NULL,
        "alarmClearedTime": TIME_OR_NULL,
        "alarmAcknowledgeTime": TIME_OR_NULL,
        "alarmAcknowledged": {"type": "boolean"},
        "perceivedSeverity": {"type": "integer", "minimum": 0, "maximum": 5},
        "extensions": OPEN,
    }
)

PR_DATA = obj(
    {
        "provisioningRequestId": UUID,
        "name": STR,
        "description": STR,
        "templateName": STR,
        "templateVersion": STR,
        "templateParameters": OPEN,
    }
)
PR_INFO = obj(
    {
        "provisioningRequestData": PR_DATA,
        "status": obj(
            {
                "updateTime": TIME,
                "message": STR,
                "provisioningPhase": {"enum": ["PENDING", "PROGRESSING", "FULFILLED", "FAILED", "DELETING"]},
            }
        ),
        "provisionedResourceSet": obj(
            {
                "nodeClusterId": {"anyOf": [UUID, {"type": "null"}]},
                "infrastructureResourceIds": {"type": "array", "items": UUID},
            }
        ),
    }
)

INVENTORY_NOTIFICATION = obj(
    {
        "notificationId": UUID,
        "consumerSubscriptionId": STR_OR_NULL,
        "notificationEventType": {"enum": [0, 1, 2]},
        "objectRef": STR,
        "priorObjectState": {"type": ["object", "null"]},
        "postObjectState": {"type": ["object", "null"]},
    }
)
ALARM_NOTIFICATION: Schema = {
    "type": "object",
    "additionalProperties": False,
    "required": ["globalCloudID", "consumerSubscriptionId", "notificationEventType", "objectRef", *ALARM["required"]],
    "properties": {
        "notificationId": UUID,
        "globalCloudID": UUID,
        "consumerSubscriptionId": STR_OR_NULL,
        "notificationEventType": {"enum": [0, 1, 2, 3]},
        "objectRef": STR,
        **ALARM["properties"],
    },
}
