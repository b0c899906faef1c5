"""The CAPI/BYOH API the project needs, carried in the repository as facts.

``crds/`` holds one CustomResourceDefinition per kind the project renders, watches or simulates,
generated from the upstream CRD files by ``python -m shared.capi_api.generate`` (see that module):
names, scope, served versions, subresources, printer columns and the structural schemas, with no
upstream prose. They are what a management cluster with Cluster API and the BYOH provider
installed serves, so the sandbox emulator installs them at start and ``o2ctl plan`` validates
renders against them when no cluster is there to ask. A test regenerates them whenever the
upstream files are present and fails on any difference.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from shared.crd_schema import CrdSchemas

REPO_ROOT = Path(__file__).resolve().parents[2]
CARRIED_DIR = Path(__file__).resolve().parent / "crds"
#: Which upstream CRD each carried file comes from, with the upstream file's sha256.
INDEX_FILE = "index.json"

#: (group, plural, kind) of every carried kind. Core CAPI kinds carry v1beta1 and v1beta2 (as
#: upstream serves both); BYOH kinds exist only as v1beta1.
KINDS: tuple[tuple[str, str, str], ...] = (
    ("cluster.x-k8s.io", "clusters", "Cluster"),
    ("cluster.x-k8s.io", "machinedeployments", "MachineDeployment"),
    ("cluster.x-k8s.io", "machines", "Machine"),
    ("controlplane.cluster.x-k8s.io", "kubeadmcontrolplanes", "KubeadmControlPlane"),
    ("bootstrap.cluster.x-k8s.io", "kubeadmconfigtemplates", "KubeadmConfigTemplate"),
    ("addons.cluster.x-k8s.io", "clusterresourcesets", "ClusterResourceSet"),
    ("infrastructure.cluster.x-k8s.io", "byoclusters", "ByoCluster"),
    ("infrastructure.cluster.x-k8s.io", "byomachinetemplates", "ByoMachineTemplate"),
    ("infrastructure.cluster.x-k8s.io", "byomachines", "ByoMachine"),
    ("infrastructure.cluster.x-k8s.io", "byohosts", "ByoHost"),
    ("infrastructure.cluster.x-k8s.io", "bootstrapkubeconfigs", "BootstrapKubeconfig"),
)


@functools.lru_cache(maxsize=1)
def _load() -> tuple[dict[str, Any], ...]:
    return tuple(
        json.loads((CARRIED_DIR / f"{group}_{plural}.json").read_text(encoding="utf-8")) for group, plural, _ in KINDS
    )


def carried_crds() -> list[dict[str, Any]]:
    """The carried CustomResourceDefinitions (fresh copies; callers may change them)."""
    return copy.deepcopy(list(_load()))


@functools.lru_cache(maxsize=1)
def carried_schemas() -> CrdSchemas:
    """Schemas of the carried kinds (immutable; shared by every caller in the process)."""
    return CrdSchemas(_load())
