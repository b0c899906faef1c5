"""A Kubernetes API emulator for the sandbox, reached only through the official client over HTTPS.

Public surface: ``KubeApiServer``. Behaviour and known limits are in docs/sandbox-kubeapi.md.
"""

from .server import KubeApiServer

__all__ = ["KubeApiServer"]
