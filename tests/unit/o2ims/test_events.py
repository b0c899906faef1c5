"""Messages to state-machine events, rejected jobs, settings to policy."""

from __future__ import annotations

import uuid

import pytest

from services.o2ims.events import event_from, resolve
from services.o2ims.settings import O2imsSettings
from shared.messages import Envelope, utcnow
from shared.payloads import (
    CapiApplied,
    CapiDeleted,
    CapiFailed,
    ClusterSummary,
    ClusterTransition,
    FprStatus,
    HostprepDone,
    HostprepFailed,
    MessageFailed,
    Payload,
)
from shared.settings import load_settings
from tests.unit.o2ims.machine import PR, T0, driven_to, ev


def _kind(p: Payload, subject_pr: str | None = None) -> tuple[str, str] | None:
    found = event_from(Envelope.wrap(p, source="t"), subject_pr, received_at=utcnow())
    return (found[0], found[1].kind) if found else None


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (HostprepDone(pr_id=PR, action="prepare", hosts=("a",)), "hostprep.done"),
        (HostprepDone(pr_id=PR, action="teardown", hosts=("a",)), "teardown.done"),
        (HostprepFailed(pr_id=PR, action="prepare", reason="r", message="m"), "hostprep.failed"),
        (HostprepFailed(pr_id=PR, action="teardown", reason="r", message="m"), "teardown.failed"),
        (CapiApplied(pr_id=PR, action="scale", objects=()), "capi.applied"),
        (CapiFailed(pr_id=PR, action="apply", reason="r", message="m"), "capi.failed"),
        (CapiFailed(pr_id=PR, action="delete", reason="r", message="m"), "capi.delete_failed"),
        (CapiDeleted(pr_id=PR, cluster="c", namespace="n", gone=False), "capi.deleting"),
        (CapiDeleted(pr_id=PR, cluster="c", namespace="n", gone=True), "capi.deleted"),
        (ClusterSummary(namespace="n", name="c", pr_id=PR), "cluster.status"),
        (ClusterSummary(namespace="n", name="c", pr_id=PR, ready=True), "cluster.ready"),
        (ClusterSummary(namespace="n", name="c", pr_id=PR, failure="boom"), "cluster.failed"),
        (ClusterSummary(namespace="n", name="c", pr_id=PR, exists=False), "cluster.gone"),
        (ClusterTransition(type="cluster.ready", namespace="n", name="c", pr_id=PR), "cluster.ready"),
        (ClusterTransition(type="cluster.failed", namespace="n", name="c", pr_id=PR), "cluster.failed"),
    ],
)
def test_each_payload_maps_to_its_event(payload: Payload, kind: str) -> None:
    assert _kind(payload) == (PR, kind)


def test_messages_without_a_pr_are_dropped() -> None:
    assert _kind(ClusterSummary(namespace="n", name="c")) is None
    assert _kind(FprStatus(name="f", phase="Pending", updated_at=T0)) is None


def test_a_rejected_job_is_routed_by_subject_and_resolved_by_the_job_id() -> None:
    failed = MessageFailed(consumer="hostprep-jobs", subject="x", reason="InvalidMessage", error="bad", deliveries=1)
    assert _kind(failed, PR) == (PR, "job.rejected")
    drv = driven_to("progressing/apply")
    rec = drv.rec
    assert rec is not None and rec.capi_job is not None and rec.hostprep_job is not None
    assert resolve(rec, ev("job.rejected", failed, drv.clock.now, rec.capi_job.id)) == "capi.failed"
    assert resolve(rec, ev("job.rejected", failed, drv.clock.now, rec.hostprep_job.id)) == "hostprep.failed"
    assert resolve(rec, ev("job.rejected", failed, drv.clock.now, str(uuid.uuid4()))) == "job.rejected"


def test_settings_build_the_policy_and_take_a_mirror_without_kubeconfig(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O2_O2IMS_PROVISIONING_DEADLINE", "5")
    monkeypatch.setenv("O2_O2IMS_TEARDOWN_HOSTS", "true")
    policy = load_settings(O2imsSettings).policy()
    assert policy.provisioning_deadline == 5 and policy.teardown_hosts and policy.hostprep_deadline == 1800
    monkeypatch.setenv("O2_O2IMS_MIRROR_ENABLED", "true")
    # No kubeconfig: the mirror uses the pod's service account (shared.kube_config.connect).
    assert load_settings(O2imsSettings).mirror_kubeconfig is None
