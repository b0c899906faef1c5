"""The per-cluster spec records focom keeps beside each FPR record (key ``<fpr>.<cluster>``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from shared.models import ClusterSpec


class SpecRecord(BaseModel):
    """The current spec of one cluster of an FPR (key ``<fpr>.<cluster>`` in the ``fpr`` bucket)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generation: int
    spec: ClusterSpec


def spec_key(fpr: str, cluster: str) -> str:
    return f"{fpr}.{cluster}"
