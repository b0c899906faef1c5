"""Settings of the o2ims service (environment prefix ``O2_O2IMS_``, common fields ``O2_*``).

Stage deadlines are seconds (defaults: host preparation 30 min, provisioning 60 min); the
``ProvisioningRequest`` mirror is off unless ``mirror_enabled`` is set (with ``mirror_kubeconfig``, or
in-cluster through the pod's service account).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.o2ims.policy import Policy
from shared.settings import ServiceSettings


class O2imsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="O2_O2IMS_", extra="ignore", populate_by_name=True, frozen=True)

    # -- stage deadlines (seconds) ----------------------------------------------------------------
    #: From acceptance until every host is prepared.
    hostprep_deadline: float = Field(30 * 60.0, gt=0)
    #: Until capi_renderer confirms the apply.
    apply_deadline: float = Field(10 * 60.0, gt=0)
    #: From the apply until the cluster is really up (DESIGN §6); also bounds a scale.
    provisioning_deadline: float = Field(60 * 60.0, gt=0)
    #: Until the Cluster is gone after a delete.
    delete_deadline: float = Field(30 * 60.0, gt=0)
    teardown_deadline: float = Field(30 * 60.0, gt=0)
    #: An upgrade's control-plane rollout (each control-plane host replaced and re-prepared in turn).
    upgrade_control_plane_deadline: float = Field(60 * 60.0, gt=0)
    #: An upgrade's worker rollout, until the old machine templates are removed.
    upgrade_workers_deadline: float = Field(60 * 60.0, gt=0)

    # -- deletion -------------------------------------------------------------------------------
    #: Reset every host that leaves a cluster (scale-down, swap, delete) with a hostprep teardown job
    #: (kubeadm reset -f, kubelet/CNI/agent state removed) before its lease is released; a host whose
    #: reset fails is quarantined. Off, a leaving host goes back to the pool as BYOH left it (not reset).
    teardown_hosts: bool = True
    #: Tombstones of deleted PRs are purged after this many seconds (0: keep forever).
    tombstone_retention: float = Field(7 * 24 * 3600.0, ge=0)
    #: Seconds between tombstone purges.
    purge_interval: float = Field(3600.0, gt=0)

    # -- record ---------------------------------------------------------------------------------
    #: Transitions kept in a PR record's history.
    history_limit: int = Field(50, ge=1, le=1000)

    # -- the ProvisioningRequest CR mirror ------------------------------------------------------
    mirror_enabled: bool = False
    #: Kubeconfig of the cluster holding the ``ProvisioningRequest`` CRD; None = in-cluster service account.
    mirror_kubeconfig: Path | None = None
    mirror_field_manager: str = Field("o2ims", min_length=1, max_length=128)

    def policy(self) -> Policy:
        return Policy(
            hostprep_deadline=self.hostprep_deadline,
            apply_deadline=self.apply_deadline,
            provisioning_deadline=self.provisioning_deadline,
            delete_deadline=self.delete_deadline,
            teardown_deadline=self.teardown_deadline,
            upgrade_control_plane_deadline=self.upgrade_control_plane_deadline,
            upgrade_workers_deadline=self.upgrade_workers_deadline,
            teardown_hosts=self.teardown_hosts,
            history_limit=self.history_limit,
        )
