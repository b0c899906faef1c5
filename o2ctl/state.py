"""The state directory of a running ``o2ctl up``: where other commands find NATS, the kubeconfig
and the inventory, and which supervisor to stop.

Layout (all under one directory, default ``./.state``, or ``--state-dir`` / ``O2CTL_STATE_DIR``)::

    state.json      what is running: urls, paths, the supervisor's pid, readiness
    nats/           the embedded nats-server's file store
    logs/           one log file per child process
    kubeconfig      the sandbox management cluster's kubeconfig (sandbox only)
    hosts/          sandbox SSH hosts: client key, known_hosts, host state (sandbox only)
    input.json      the inventory the services use
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_STATE_DIR = ".state"


def state_dir(explicit: str | Path | None = None) -> Path:
    return Path(explicit or os.environ.get("O2CTL_STATE_DIR") or DEFAULT_STATE_DIR).resolve()


@dataclass
class RunState:
    nats_url: str = ""
    kubeconfig: str | None = None
    inventory: str | None = None
    namespace: str = "default"
    supervisor_pid: int | None = None
    sandbox: bool = False
    ready: bool = False
    children: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> RunState | None:
        path = directory / "state.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / "state.json.tmp"
        tmp.write_text(json.dumps(asdict(self), indent=1))
        tmp.replace(directory / "state.json")  # atomic: readers never see half a file


def pid_alive(pid: int | None) -> bool:
    """Whether ``pid`` runs; a zombie counts as gone (reaped here when it is our own child)."""
    if not pid:
        return False
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass  # not our child: its parent reaps it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"
