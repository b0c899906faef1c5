"""Label selectors of the machine templates: which hosts a selector pins, and how a selector is evaluated.

A ByoMachineTemplate must claim exactly the hosts the spec names (and, once versioned, only at their
version); render builds these selectors and validate checks them with the same evaluation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shared.objects import HOST_ID_LABEL, K8S_VERSION_LABEL


def host_selector(host_ids: Sequence[str], version: str | None = None) -> dict[str, Any]:
    """A selector of exactly the hosts whose agents run with ``--label o2ims.oran.org/host-id=<id>`` (and, given a
    version, ``o2ims.oran.org/k8s-version=<version>``: a host a rollout freed matches only once re-prepared)."""
    versioned: dict[str, Any] = {"matchLabels": {K8S_VERSION_LABEL: version}} if version is not None else {}
    if not host_ids:
        # ``In`` needs at least one value; Exists AND DoesNotExist is valid and matches nothing.
        return {
            **versioned,
            "matchExpressions": [
                {"key": HOST_ID_LABEL, "operator": "Exists"},
                {"key": HOST_ID_LABEL, "operator": "DoesNotExist"},
            ],
        }
    return {**versioned, "matchExpressions": [{"key": HOST_ID_LABEL, "operator": "In", "values": sorted(host_ids)}]}


def selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """Evaluate a ``metav1.LabelSelector``; malformed selectors match nothing (as the API treats them)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In":
            ok = bool(values) and present and labels[key] in values
        elif op == "NotIn":
            ok = bool(values) and (not present or labels[key] not in values)
        elif op == "Exists":
            ok = present and not values
        elif op == "DoesNotExist":
            ok = not present and not values
        else:
            ok = False
        if not ok:
            return False
    return True


def pinned_hosts(
    selector: Mapping[str, Any], candidates: Iterable[str], version: str, *, by_version: bool = True
) -> tuple[set[str], bool]:
    """Which of ``candidates`` (host ids, registered at ``version``) the selector claims, and whether it claims
    anything else: probed with an unknown id, and (``by_version``, every template but a legacy one) a candidate
    at another version and one without the version label, and an unlabeled host."""
    chosen = {c for c in candidates if selector_matches(selector, {HOST_ID_LABEL: c, K8S_VERSION_LABEL: version})}
    probes = [
        {HOST_ID_LABEL: "\x00not-a-requested-host", K8S_VERSION_LABEL: version},
        {HOST_ID_LABEL: "\x00not-a-requested-host"},
        {},
    ]
    if by_version:
        probes += [
            *({HOST_ID_LABEL: c, K8S_VERSION_LABEL: f"{version}-other"} for c in sorted(chosen)[:1]),
            {HOST_ID_LABEL: next(iter(sorted(chosen)), "")},
        ]
    return chosen, any(selector_matches(selector, p) for p in probes)
