"""Where the reference CRDs live: the ``SANDBOX_CRD_DIR`` setting, read when asked (never at import)."""

from __future__ import annotations

import os
from pathlib import Path

ENV_CRD_DIR = "SANDBOX_CRD_DIR"


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def reference_crd_dir() -> Path:
    """``$SANDBOX_CRD_DIR``, else ``../shared/crds`` next to the repository (upstream CRDs, read-only)."""
    configured = os.environ.get(ENV_CRD_DIR)
    return Path(configured) if configured else (repo_root() / ".." / "shared" / "crds").resolve()


def project_crd_dir() -> Path:
    """The project's own CRDs (``deploy/crds``)."""
    return repo_root() / "deploy" / "crds"


def default_crd_dirs() -> list[Path]:
    return [d for d in (reference_crd_dir(), project_crd_dir()) if d.is_dir()]
