"""SSH sandbox hosts: asyncssh servers that look like Ubuntu hosts being prepared for Kubernetes.

Public API (see docs/sandbox-hosts.md): ``SandboxHostPool``, ``SandboxHost``, ``HostFacts``, ``Fault``,
``HostState``. Exports are resolved lazily so that ``sandbox.hosts.exec`` (run behind a real sshd,
possibly by a bare system Python) imports only the standard library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .facts import HostFacts
    from .faults import Fault
    from .host import SandboxHost
    from .pool import SandboxHostPool
    from .state import HostState

__all__ = ["Fault", "HostFacts", "HostState", "SandboxHost", "SandboxHostPool"]

_WHERE = {
    "Fault": "faults",
    "HostFacts": "facts",
    "HostState": "state",
    "SandboxHost": "host",
    "SandboxHostPool": "pool",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
