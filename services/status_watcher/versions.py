"""Kubernetes versions as CAPI/BYOH objects carry them, read strictly (they are foreign input). Pure."""

from __future__ import annotations

import re
from typing import Any

_VERSION = re.compile(r"^v[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,6}$")


def version_of(value: Any) -> str | None:
    """A ``vX.Y.Z`` version as a Machine, KCP or MachineDeployment carries it (CAPI's webhook adds the ``v``);
    anything else is None."""
    text = f"v{value}" if isinstance(value, str) and value[:1].isdigit() else value
    return text if isinstance(text, str) and _VERSION.fullmatch(text) else None


def label_version(value: Any) -> str | None:
    """The ``o2ims.oran.org/k8s-version`` label's value when it is exactly ``vX.Y.Z``, else None."""
    return value if isinstance(value, str) and _VERSION.fullmatch(value) else None
