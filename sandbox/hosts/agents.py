"""Runs the BYOH agent simulator (``sandbox.capi.agent.HostAgent``) in-process for a host's agent unit.

``systemctl start`` returns at once (a ``Type=simple`` unit); the agent registers its ByoHost in the
background and the unit turns ``failed`` (with the reason in ``journalctl -u``) if that fails.
The kubeadm hooks record ``kubeadm init|join|reset`` in the host state, or raise for an injected fault.
``kubeadm init|join`` runs kubeadm's preflight first: on a host left as a previous cluster's node
(kubelet running, ``/etc/kubernetes`` and etcd data present) it fails with kubeadm's own error
lines, unless the bootstrap's ``ignorePreflightErrors`` name the check; and it fails when the
host's installed kubeadm or kubelet is not at the Machine's version (an old-version host claimed
by a new-version Machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from shared.errors import TemporaryError

from . import units
from .packages import upstream_version
from .shims.agent import AgentSpec, AgentStartError
from .vfs import HostFs

if TYPE_CHECKING:
    from .shims import HostLike

log = structlog.get_logger(__name__)
AGENT_MODULE = "sandbox.capi.agent"
#: The static pods ``kubeadm init`` writes (and its preflight refuses to overwrite).
_CONTROL_PLANE_PODS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd")
_OPTIONAL_ARGS = {"ip", "hostinfo", "skip_installation"}


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".")[:3] if p.isdigit())


#: Start attempts of an agent unit before it is reported failed.
AGENT_START_ATTEMPTS = 5


@dataclass
class _Running:
    agent: Any
    task: asyncio.Task[None]
    ready: asyncio.Event


def preload_agent() -> bool:
    """Import the agent simulator (and the Kubernetes client under it) now; whether it is available.

    A pool calls this once as it starts, so that no host's first ``systemctl start`` pays a second of
    imports in the middle of a run. A failure is left for ``AgentSupervisor.start`` to report.
    """
    try:
        importlib.import_module(AGENT_MODULE)
    except Exception:
        return False
    return True


class AgentSupervisor:
    """The agents of one host, keyed by unit name."""

    def __init__(self, host: HostLike) -> None:
        self._host = host
        self._running: dict[str, _Running] = {}

    @property
    def units(self) -> list[str]:
        return sorted(self._running)

    def agent(self, unit: str) -> Any:
        running = self._running.get(unit)
        return running.agent if running else None

    async def start(self, unit: str, spec: AgentSpec) -> None:
        await self.stop(unit)
        try:
            module = importlib.import_module(AGENT_MODULE)
            host_agent = module.HostAgent
        except Exception as exc:
            raise AgentStartError(f"BYOH agent simulator unavailable: {type(exc).__name__}: {exc}") from exc
        vfs = self._host.vfs
        facts = self._host.facts
        kwargs: dict[str, Any] = {
            "bootstrap_kubeconfig": vfs.real(spec.bootstrap_kubeconfig),
            "hostname": self._host.state.hostname,
            "namespace": spec.namespace,
            "labels": dict(spec.labels),
            "config_path": vfs.real("/root/.byoh/config"),
            "on_bootstrap": self.on_bootstrap,
            "on_reset": self.on_reset,
            "ip": self._host.ip,
            "hostinfo": {"architecture": facts.dpkg_arch, "osname": "linux", "osimage": facts.os_pretty_name},
            "skip_installation": spec.skip_installation,
        }
        try:
            accepted = inspect.signature(host_agent).parameters
            # Optional extras (ip, hostinfo) are passed only when this version of the simulator takes them.
            agent = host_agent(**{k: v for k, v in kwargs.items() if k in accepted or k not in _OPTIONAL_ARGS})
        except Exception as exc:
            raise AgentStartError(f"agent setup failed: {type(exc).__name__}: {exc}") from exc
        ready = asyncio.Event()
        task = asyncio.create_task(self._run(unit, agent, ready), name=f"byoh-agent-{self._host.host_id}")
        self._running[unit] = _Running(agent, task, ready)

    async def _run(self, unit: str, agent: Any, ready: asyncio.Event) -> None:
        try:
            # Like systemd's Restart=on-failure: a transient start failure (API unreachable, a CA file
            # read while another agent in this process was writing it) is retried a few times.
            if self._host.latency.agent_registration:
                await asyncio.sleep(self._host.latency.agent_registration)  # the profile's registration time
            for attempt in range(AGENT_START_ATTEMPTS):
                try:
                    await agent.start()
                    break
                except TemporaryError:
                    if attempt == AGENT_START_ATTEMPTS - 1:
                        raise
                    await asyncio.sleep(0.2 * (attempt + 1))  # restart backoff
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("byoh_agent_start_failed", host_id=self._host.host_id, unit=unit, error=type(exc).__name__)
            self._fail(unit, f"agent failed to register: {type(exc).__name__}: {exc}")
            self._running.pop(unit, None)
            with contextlib.suppress(Exception):
                await agent.stop()
            ready.set()
            return
        units.journal_line(
            self._host.state, unit, f"registered ByoHost {self._host.state.hostname}", process="byoh-hostagent[4242]"
        )
        log.info("byoh_agent_registered", host_id=self._host.host_id, unit=unit)
        ready.set()
        self._host.notify_changed()

    def _fail(self, unit: str, reason: str) -> None:
        rec = self._host.state.services.get(unit)
        if rec is not None:
            rec.active = "failed"
            rec.failure = reason
        units.journal_line(self._host.state, unit, reason, process="byoh-hostagent[4242]")
        units.journal_line(
            self._host.state, unit, f"{unit}.service: Main process exited, code=exited, status=1/FAILURE"
        )
        self._host.notify_changed()

    async def wait_ready(self, unit: str) -> bool:
        """Wait until the unit's agent registered (True) or failed/stopped (False); callers bound the wait."""
        running = self._running.get(unit)
        if running is None:
            return False
        await running.ready.wait()
        return unit in self._running

    async def stop(self, unit: str) -> None:
        running = self._running.pop(unit, None)
        if running is None:
            return
        if not running.task.done():
            running.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await running.task
        try:
            await running.agent.stop()
        except Exception as exc:
            log.warning("byoh_agent_stop_failed", host_id=self._host.host_id, unit=unit, error=type(exc).__name__)

    async def stop_all(self) -> None:
        for unit in list(self._running):
            await self.stop(unit)

    # -- kubeadm hooks called by the agent -----------------------------------------------------

    def _root_fs(self) -> HostFs:
        return HostFs(self._host.vfs, self._host.state, self._host.facts, "root")

    async def on_bootstrap(
        self,
        kind: str,
        ignored: frozenset[str] = frozenset(),
        version: str | None = None,
        control_plane: bool | None = None,
    ) -> str | None:
        """``kubeadm init|join`` for a Machine of ``version`` (None: the Machine's version is not known);
        ``control_plane`` (default: only ``init``) also writes the control-plane static pods."""
        state = self._host.state
        fault = self._host.bootstrap_fault()
        if fault is None:
            fault = self._version_mismatch(kind, version)
        if fault is None:
            fault = self._preflight(kind, ignored, version)
        if fault is not None:
            state.kubeadm_runs.append({"action": kind, "source": "agent", "ok": False, "detail": fault})
            state.record(
                f"kubeadm {kind}",
                user="root",
                exit_code=1,
                changed=False,
                source="agent",
                stderr=fault.encode(),
                fault="bootstrap_failure",
            )
            self._host.notify_changed()
            raise RuntimeError(f"kubeadm {kind} failed: {fault}")
        fs = self._root_fs()
        fs.mkdir("/etc/kubernetes/manifests", parents=True)
        fs.mkdir("/etc/kubernetes/pki", parents=True)
        fs.write("/etc/kubernetes/kubelet.conf", b"# sandbox kubelet kubeconfig\n", mode=0o600)
        fs.write("/etc/kubernetes/pki/ca.crt", b"# sandbox cluster CA\n", mode=0o644)
        fs.mkdir("/var/lib/kubelet", parents=True)
        fs.write("/var/lib/kubelet/config.yaml", b"# sandbox kubelet configuration\n", mode=0o644)
        if control_plane if control_plane is not None else kind == "init":
            # The control-plane static pods run kubeadm's own version (their images are tagged with it).
            kubeadm = state.installed("kubeadm")
            tag = f"v{upstream_version(kubeadm)}" if kubeadm else "unknown"
            fs.write("/etc/kubernetes/admin.conf", b"# sandbox admin kubeconfig\n", mode=0o600)
            for component in _CONTROL_PLANE_PODS:
                pod = f"# sandbox {component}\nimage: registry.k8s.io/{component}:{tag}\n"
                fs.write(f"/etc/kubernetes/manifests/{component}.yaml", pod.encode())
            fs.mkdir("/var/lib/etcd/member", parents=True)
            state.apiserver_version = kubeadm
        kubelet = state.services.get("kubelet")
        if kubelet is not None and kubelet.active != "active":
            kubelet.active = "active"
            kubelet.start_count += 1
        state.kubeadm = kind
        state.kubeadm_runs.append({"action": kind, "source": "agent", "ok": True, "detail": ""})
        state.record(f"kubeadm {kind}", user="root", exit_code=0, changed=True, source="agent")
        self._host.notify_changed()
        installed = state.installed("kubelet")
        return f"v{upstream_version(installed)}" if installed else None

    def _version_mismatch(self, kind: str, version: str | None) -> str | None:
        """kubeadm cannot set up a Machine of another version than its own (not a skippable check)."""
        want = upstream_version(version.lstrip("v")) if version else None
        kubeadm = self._host.state.installed("kubeadm")
        if want is None or kubeadm is None or upstream_version(kubeadm) == want:
            return None
        what = "deploy a control plane" if kind == "init" else "join a node"
        return (
            f"error execution phase preflight: this version of kubeadm (v{upstream_version(kubeadm)}) cannot "
            f"{what} of Kubernetes v{want}: install kubeadm, kubelet and kubectl v{want} on this host"
        )

    def _preflight(self, kind: str, ignored: frozenset[str], version: str | None = None) -> str | None:
        """kubeadm's preflight on what a previous node left behind and on the kubelet's version; the error
        text kubeadm prints, or None."""
        fs = self._root_fs()
        skip = {name.lower() for name in ignored}
        found: list[tuple[str, str]] = []
        want = upstream_version(version.lstrip("v")) if version else None
        installed = self._host.state.installed("kubelet")
        have = upstream_version(installed) if installed else None
        if want is not None and have is not None and have != want:
            if _version_key(have) > _version_key(want):
                text = (
                    "the kubelet version is higher than the control plane version. This is not a supported "
                    f'version skew and may lead to a malfunctional cluster. Kubelet version: "{have}" '
                    f'Control plane version: "{want}"'
                )
            else:
                text = f'the kubelet version "{have}" is not the version of this node\'s Machine "{want}"'
            found.append(("KubeletVersion", text))
        kubelet = self._host.state.services.get("kubelet")
        # Only a configured kubelet listens; a freshly installed one crash-loops without its config.
        if kubelet is not None and kubelet.active == "active" and fs.is_file("/var/lib/kubelet/config.yaml"):
            found.append(("Port-10250", "Port 10250 is in use"))
        files = ["/etc/kubernetes/kubelet.conf"]
        if kind == "init":
            files += [f"/etc/kubernetes/manifests/{c}.yaml" for c in _CONTROL_PLANE_PODS]
        else:
            files.append("/etc/kubernetes/pki/ca.crt")
        for path in files:
            if fs.is_file(path):
                found.append(("FileAvailable-" + path.replace("/", "-"), f"{path} already exists"))
        if kind == "init" and fs.is_dir("/var/lib/etcd") and fs.listdir("/var/lib/etcd"):
            found.append(("DirAvailable--var-lib-etcd", "/var/lib/etcd is not empty"))
        fatal = [(check, text) for check, text in found if check.lower() not in skip and "all" not in skip]
        if not fatal:
            return None
        lines = "".join(f"\n\t[ERROR {check}]: {text}" for check, text in fatal)
        return (
            "error execution phase preflight: [preflight] Some fatal errors occurred:"
            + lines
            + "\n[preflight] If you know what you are doing, you can make a check non-fatal with "
            "`--ignore-preflight-errors=...`"
        )

    async def on_reset(self) -> None:
        state = self._host.state
        fs = self._root_fs()
        for directory in ("/etc/kubernetes", "/var/lib/kubelet", "/var/lib/etcd", "/etc/cni/net.d"):
            if fs.is_dir(directory):
                for entry in fs.listdir(directory):
                    fs.remove(f"{directory}/{entry}", recursive=True)
        kubelet = state.services.get("kubelet")
        if kubelet is not None and kubelet.active == "active":
            kubelet.active = "inactive"
            kubelet.stop_count += 1
        state.kubeadm = "reset"
        state.kubeadm_runs.append({"action": "reset", "source": "agent", "ok": True, "detail": ""})
        state.record("kubeadm reset", user="root", exit_code=0, changed=True, source="agent")
        self._host.notify_changed()
