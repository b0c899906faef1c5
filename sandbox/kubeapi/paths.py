"""Which CRDs the emulator installs: the carried CAPI/BYOH API, the project's own CRDs, and extra directories.

A management cluster has Cluster API and the BYOH provider installed before anything is applied to
it; the emulator likewise installs the carried CAPI/BYOH CRDs (``shared.capi_api``) at start. More
CRD directories can be added (``--crds``, or ``SANDBOX_CRD_DIR`` for the tests' fixtures, e.g. to
serve the upstream files themselves); a CRD given there replaces the carried one of the same name.
Settings are read when asked, never at import.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path

from shared.capi_api import carried_crds
from shared.crd_schema import CrdSchemas

ENV_CRD_DIR = "SANDBOX_CRD_DIR"


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def project_crd_dir() -> Path:
    """The project's own CRDs (``deploy/crds``)."""
    return repo_root() / "deploy" / "crds"


def override_crd_dir() -> Path | None:
    """``$SANDBOX_CRD_DIR`` when set: CRDs served instead of (or besides) the carried ones."""
    configured = os.environ.get(ENV_CRD_DIR)
    return Path(configured) if configured else None


def default_crd_dirs() -> list[Path]:
    """What the sandbox adds to the carried CRDs: ``deploy/crds`` and ``$SANDBOX_CRD_DIR`` when set."""
    override = override_crd_dir()
    return [d for d in (project_crd_dir(), override) if d is not None and d.is_dir()]


def installed_crds(crd_dirs: Sequence[Path], *, carried: bool = True) -> CrdSchemas:
    """The CRDs a started emulator serves: the carried ones (unless ``carried=False``), then ``crd_dirs``.

    Blocking (reads files): call it from a worker thread in async code.
    """
    return _installed(CrdSchemas.from_dirs(crd_dirs) if crd_dirs else None, carried)


@functools.lru_cache(maxsize=16)
def _installed(extra: CrdSchemas | None, carried: bool) -> CrdSchemas:
    # ``from_dirs`` returns the same object while the files are unchanged, so this cache holds.
    by_name = {crd["metadata"]["name"]: crd for crd in (carried_crds() if carried else [])}
    by_name.update({crd["metadata"]["name"]: crd for crd in (extra.crds() if extra is not None else [])})
    return CrdSchemas(by_name.values())
