"""Alarm routes (``/o2ims-infrastructureMonitoring/v1/alarms``): list, one record, and acknowledgement.

``PATCH M/alarms/{id}`` takes ``application/merge-patch+json`` ``{"alarmAcknowledged": true}``
(the only change a client may make) and answers 200 with the record; the ACKNOWLEDGE notification
goes out through the alarm's outbox like every other alarm change.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from services.o2ims_api import alarms, schemas
from services.o2ims_api.api import MONITORING, VERSION, uuid_param
from services.o2ims_api.notifier import Notifier
from shared.httpapi.auth import READ, requires
from shared.httpapi.problems import HttpProblem, bad_request, json_body, not_found
from shared.httpapi.query import collection_response, item_response

M = f"{MONITORING}/{VERSION}"
NOTIFIER_KEY = web.AppKey("notifier", Notifier)


@requires(*READ)
async def list_alarms(request: web.Request) -> web.Response:
    records = [s.record for s in await request.app[NOTIFIER_KEY].alarm_records()]
    return collection_response(
        request, records, schemas.ALARM, lambda o: str(o["alarmEventRecordId"]), identity=("alarmEventRecordId",)
    )


async def _find(request: web.Request) -> alarms.AlarmState:
    wanted = uuid_param(request, "alarmEventRecordId", "alarm")
    for state in await request.app[NOTIFIER_KEY].alarm_records():
        if state.record.get("alarmEventRecordId") == wanted:
            return state
    raise not_found(f"no alarm {wanted}")


@requires(*READ)
async def get_alarm(request: web.Request) -> web.Response:
    return item_response(request, (await _find(request)).record, schemas.ALARM, identity=("alarmEventRecordId",))


@requires("maintainer")
async def patch_alarm(request: web.Request) -> web.Response:
    if request.content_type not in ("application/merge-patch+json", "application/json"):
        raise HttpProblem(415, "send the change as application/merge-patch+json")
    body = await json_body(request)
    if set(body) != {"alarmAcknowledged"} or body["alarmAcknowledged"] is not True:
        raise bad_request('only {"alarmAcknowledged": true} may be patched')
    state = await _find(request)
    notifier = request.app[NOTIFIER_KEY]
    record_id = state.record["alarmEventRecordId"]
    now = datetime.now(UTC)

    def ack(cur: alarms.AlarmState | None) -> alarms.AlarmState | None:
        if cur is None or cur.record.get("alarmEventRecordId") != record_id:
            return None  # re-raised meanwhile: the acknowledged occurrence is gone
        return alarms.acknowledge(cur, now)

    updated, _ = await notifier.states.mutate(state.key, ack)
    if updated is None or updated.record.get("alarmEventRecordId") != record_id:
        raise not_found(f"alarm {record_id} was replaced by a newer occurrence")
    if updated.outbox:
        await notifier.flush_alarm(updated)
    return web.json_response(updated.record)


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{M}/alarms", list_alarms)
    app.router.add_get(f"{M}/alarms/{{alarmEventRecordId}}", get_alarm)
    app.router.add_patch(f"{M}/alarms/{{alarmEventRecordId}}", patch_alarm)
