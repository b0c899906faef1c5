"""The simulated BYOH host agent: registers a ByoHost, runs the bootstrap when claimed, releases it after.

It behaves like ``byoh-hostagent``, by default with ``--skip-installation``: when the ByoMachine
goes away it releases the ByoHost (machineRef, bootstrap secret, cluster labels and claim
annotations cleared) but, exactly like upstream, runs its cleanup (``kubeadm reset``) only when
its own installer ran, i.e. never under ``--skip-installation``: the host keeps its kubelet,
``/etc/kubernetes`` and CNI state until someone resets it. Labels come from ``--label`` and are
set only when the ByoHost is created; a restarted agent never changes them. With an existing
``~/.byoh/config`` it uses that and ignores the bootstrap kubeconfig; otherwise it
authenticates with the bootstrap kubeconfig and writes its own config. The real
agent swaps the bootstrap token for a client certificate through a CSR; the
emulator only knows tokens, so the sandbox agent uses the bootstrap token once
to register a non-expiring token Secret of its own and writes that into its
config (same server and CA), which keeps working after the bootstrap token expires.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import structlog
import yaml

from sandbox.capi.agent_connections import Lease, share
from sandbox.capi.bootstrapdata import ignored_preflight_errors, role_of, runs_control_plane
from sandbox.capi.options import (
    BOOTSTRAP_CONDITION,
    BOOTSTRAP_TOKEN_TYPE,
    BYOMACHINE_NAME_LABEL,
    CLAIM_ANNOTATIONS,
    FAIL_BOOTSTRAP_ANNOTATION,
    INFRA_VERSION,
    K8S_VERSION_ANNOTATION,
    KUBELET_VERSION_ANNOTATION,
)
from sandbox.capi.shapes import Conditions, Obj, suffix
from shared.errors import PermanentError, ServiceError, classify
from shared.kube import KubeClient, WatchExpired
from shared.objects import CLUSTER_NAME_LABEL, UNREGISTERING_ANNOTATION, annotations_of, dig, meta

log = structlog.get_logger(__name__)

#: libyaml when PyYAML has it: the same documents for a tenth of the CPU, and every host's agent reads its
#: bootstrap kubeconfig and writes its own.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
#: Kubeconfig keys naming a file, which resolves against the directory of the kubeconfig that names it.
_FILE_KEYS = frozenset(
    {"certificate-authority", "client-certificate", "client-key", "tokenFile", "exec", "auth-provider"}
)

#: Runs the bootstrap on the host: the role (``init``/``join``), the preflight errors it may ignore, the
#: Kubernetes version the Machine asks for (the claim's ``k8sversion`` annotation, None when unknown) and
#: whether the node runs the control plane; returns the version of the kubelet it started, when known.
BootstrapHook = Callable[[str, frozenset[str], str | None, bool], Awaitable[str | None]]
ResetHook = Callable[[], Awaitable[None]]


class BootstrapFailed(Exception):
    """The bootstrap script failed (or a failure was injected)."""


def _names_files(kubeconfig: Mapping[str, Any]) -> bool:
    """Whether a cluster or user entry of ``kubeconfig`` refers to a file (or runs a plugin)."""
    for section, key in (("clusters", "cluster"), ("users", "user")):
        for entry in kubeconfig.get(section) or []:
            body = entry.get(key) if isinstance(entry, dict) else None
            if isinstance(body, dict) and _FILE_KEYS & body.keys():
                return True
    return False


def _fake_mac(hostname: str) -> str:
    digest = hashlib.sha256(hostname.encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


class HostAgent:
    """One host's agent; ``start()`` returns once its ByoHost exists, a task keeps reconciling it."""

    def __init__(
        self,
        *,
        bootstrap_kubeconfig: Path,
        hostname: str,
        namespace: str = "default",
        labels: Mapping[str, str] | None = None,
        config_path: Path,
        on_bootstrap: BootstrapHook | None = None,
        on_reset: ResetHook | None = None,
        ip: str | None = None,
        hostinfo: Mapping[str, str] | None = None,
        skip_installation: bool = True,
    ) -> None:
        self.hostname = hostname
        self.namespace = namespace
        self.labels = dict(labels or {})
        self._bootstrap_kubeconfig = Path(bootstrap_kubeconfig)
        self._config_path = Path(config_path)
        self._on_bootstrap = on_bootstrap
        self._on_reset = on_reset
        self.skip_installation = skip_installation
        self._ip = ip or "10.0.0.10"
        self._hostinfo = dict(hostinfo or {"architecture": "amd64", "osname": "linux", "osimage": "Ubuntu 22.04.4 LTS"})
        self._client: KubeClient | None = None
        self._lease: Lease | None = None
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self._failures = 0
        #: Bootstraps run by this agent (``init``/``join``), ``release`` and (installer only) ``reset``.
        self.history: list[str] = []

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._client = await self._connect()
        try:
            self._lease = await share(self._client)
            await self._register()
        except BaseException:
            await self._close_client()
            raise
        self._task = asyncio.create_task(self._run(), name=f"byoh-agent-{self.hostname}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_client()

    async def _close_client(self) -> None:
        client, lease, self._client, self._lease = self._client, self._lease, None, None
        try:
            if client is not None:
                await client.close()
        finally:
            if lease is not None:
                await lease.release()

    @property
    def client(self) -> KubeClient:
        assert self._client is not None, "agent not started"
        return self._client

    async def _connect(self) -> KubeClient:
        config = self._config_path
        if await asyncio.to_thread(config.exists):
            return await KubeClient.from_kubeconfig(config)
        text = await asyncio.to_thread(self._bootstrap_kubeconfig.read_text)
        try:
            kubeconfig = yaml.load(text, Loader=_LOADER)  # noqa: S506 - _LOADER is SafeLoader or CSafeLoader
        except yaml.YAMLError:
            kubeconfig = None  # not chained: a YAML error quotes the text around it, and that text is a credential
        if not isinstance(kubeconfig, dict):
            raise PermanentError(f"{self._bootstrap_kubeconfig} is not a kubeconfig", reason="InvalidKubeconfig")
        bootstrap = await KubeClient.from_kubeconfig_dict(kubeconfig)
        lease = None
        try:
            lease = await share(bootstrap)
            token = await self._host_credential(bootstrap)
        finally:
            await bootstrap.close()
            if lease is not None:
                await lease.release()
        for user in kubeconfig.get("users") or []:
            user["user"] = {"token": token}

        def write_config() -> None:
            config.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                yaml.dump(kubeconfig, handle, Dumper=_DUMPER, sort_keys=False)

        await asyncio.to_thread(write_config)
        if _names_files(kubeconfig):
            return await KubeClient.from_kubeconfig(config)  # its file names now resolve from the config's directory
        # Everything inline: the config just written holds exactly this document, no need to read it back.
        return await KubeClient.from_kubeconfig_dict(kubeconfig)

    async def _host_credential(self, bootstrap: KubeClient) -> str:
        """Stand-in for the CSR flow: a non-expiring token of this host, minted with the bootstrap token.

        The real agent trades the (30-minute) bootstrap token for a client certificate; the emulator
        authenticates tokens, so the sandbox agent registers its own long-lived one instead.
        """
        token_id, token_secret = suffix(6), suffix(16)
        data = {
            "token-id": token_id,
            "token-secret": token_secret,
            "usage-bootstrap-authentication": "true",
            "auth-extra-groups": "byoh:hosts",
            "description": f"sandbox credential of BYOH host {self.namespace}/{self.hostname}",
        }
        await bootstrap.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": f"bootstrap-token-{token_id}",
                    "namespace": "kube-system",
                    "labels": {"sandbox.focom-o2ims.io/byoh-host": self.hostname},
                },
                "type": BOOTSTRAP_TOKEN_TYPE,
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
            }
        )
        return f"{token_id}.{token_secret}"

    # -- registration -------------------------------------------------------------------------

    def _status_facts(self) -> Obj:
        return {
            "hostinfo": dict(self._hostinfo),
            "network": [
                {
                    "networkInterfaceName": "eth0",
                    "macAddr": _fake_mac(self.hostname),
                    "ipAddrs": [f"{self._ip}/24"],
                    "isDefault": True,
                    "connected": True,
                }
            ],
        }

    async def _register(self) -> None:
        host = await self.client.get(INFRA_VERSION, "ByoHost", self.hostname, self.namespace)
        if host is None:
            body = {
                "apiVersion": INFRA_VERSION,
                "kind": "ByoHost",
                "metadata": {"name": self.hostname, "namespace": self.namespace, "labels": dict(self.labels)},
                "spec": {},
            }
            try:
                host = await self.client.create(body)
            except ServiceError as exc:
                if exc.reason != "AlreadyExists":
                    raise
                host = await self.client.get(INFRA_VERSION, "ByoHost", self.hostname, self.namespace)
                if host is None:
                    raise
            log.info("byohost_registered", host=self.hostname, namespace=self.namespace)
        status = self._status_facts()
        if not dig(host, "status", "machineRef"):
            status["conditions"] = self._waiting_conditions(host)
        await self._patch_status(status)

    def _waiting_conditions(self, host: Obj | None) -> list[Obj]:
        conds = Conditions(dig(host, "status", "conditions"), v1beta2=False)
        conds.set(BOOTSTRAP_CONDITION, False, "WaitingForMachineRefToBeAssigned", severity="Info")
        return conds.build()

    async def _patch_status(self, status: Obj) -> Obj:
        return await self.client.patch(
            INFRA_VERSION, "ByoHost", self.hostname, self.namespace, {"status": status}, subresource="status"
        )

    # -- the reconcile loop -------------------------------------------------------------------

    async def _run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._watch())
            while True:
                delay = None if self._failures == 0 else min(2.0 * 2 ** (self._failures - 1), 60.0)
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel when the event fires at once.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._kick.wait()
                self._kick.clear()
                try:
                    await self._reconcile()
                except (asyncio.CancelledError, KeyboardInterrupt):
                    raise
                except Exception as exc:
                    err = classify(exc)
                    self._failures += 1
                    log.warning("byoh_agent_reconcile_failed", host=self.hostname, reason=err.reason, error=err.message)

    async def _watch(self) -> None:
        selector = f"metadata.name={self.hostname}"
        failures = 0
        while True:
            try:
                _, rv = await self.client.list(INFRA_VERSION, "ByoHost", self.namespace, field_selector=selector)
                self._kick.set()
                failures = 0
                while True:
                    async for event in self.client.watch(
                        INFRA_VERSION, "ByoHost", self.namespace, resource_version=rv, field_selector=selector
                    ):
                        rv = str(meta(event.object).get("resourceVersion") or rv)
                        if event.type != "BOOKMARK":
                            self._kick.set()
            except WatchExpired:
                continue
            except Exception as exc:
                err = classify(exc)
                failures += 1
                log.warning("byoh_agent_watch_failed", host=self.hostname, reason=err.reason, error=err.message)
                await asyncio.sleep(min(0.2 * 2**failures, 5.0))

    async def _reconcile(self) -> None:
        host = await self.client.get(INFRA_VERSION, "ByoHost", self.hostname, self.namespace)
        if host is None or meta(host).get("deletionTimestamp"):
            self._failures = 0
            return
        if UNREGISTERING_ANNOTATION in annotations_of(host):
            await self._release(host)
            self._failures = 0
            return
        machine_ref = dig(host, "status", "machineRef")
        if not machine_ref:
            cond = self._condition(host)
            if cond is None or cond.get("reason") != "WaitingForMachineRefToBeAssigned":
                await self._patch_status({"conditions": self._waiting_conditions(host)})
            self._failures = 0
            return
        secret_ref = dig(host, "spec", "bootstrapSecret")
        cond = self._condition(host)
        if not secret_ref or (cond is not None and cond.get("status") == "True"):
            self._failures = 0
            return
        await self._bootstrap(host, secret_ref)

    @staticmethod
    def _condition(host: Obj) -> dict[str, Any] | None:
        for cond in dig(host, "status", "conditions") or []:
            if cond.get("type") == BOOTSTRAP_CONDITION:
                return dict(cond)
        return None

    async def _bootstrap(self, host: Obj, secret_ref: Mapping[str, Any]) -> None:
        conds = Conditions(dig(host, "status", "conditions"), v1beta2=False)
        try:
            secret = await self.client.get(
                "v1", "Secret", str(secret_ref.get("name")), str(secret_ref.get("namespace") or self.namespace)
            )
            if secret is None:
                raise BootstrapFailed(f"bootstrap secret {secret_ref.get('name')} not found")
            data = dig(secret, "data", "value")
            script = base64.b64decode(str(data or "")).decode()
            role = role_of(script)
            ignored = ignored_preflight_errors(script)
            if role is None:
                raise BootstrapFailed("bootstrap data runs neither kubeadm init nor kubeadm join")
            if annotations_of(host).get(FAIL_BOOTSTRAP_ANNOTATION) == "true":
                raise BootstrapFailed(f"injected bootstrap failure on {self.hostname}")
            version = annotations_of(host).get(K8S_VERSION_ANNOTATION) or None
            control_plane = runs_control_plane(script)
            hook = self._on_bootstrap
            kubelet = await hook(role, ignored, version, control_plane) if hook is not None else None
            self.history.append(role)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except ServiceError:
            raise
        except Exception as exc:
            self._failures += 1
            message = str(exc) or type(exc).__name__
            conds.set(BOOTSTRAP_CONDITION, False, "CloudInitExecutionFailed", message[:500], "Error")
            await self._patch_status({"conditions": conds.build()})
            log.warning("byoh_agent_bootstrap_failed", host=self.hostname, error=message[:500])
            return
        if kubelet:
            # Sandbox stand-in for the Node's kubeletVersion (the sandbox has no workload API server).
            await self.client.patch(
                INFRA_VERSION,
                "ByoHost",
                self.hostname,
                self.namespace,
                {"metadata": {"annotations": {KUBELET_VERSION_ANNOTATION: kubelet}}},
            )
        conds.set(BOOTSTRAP_CONDITION, True)
        await self._patch_status({"conditions": conds.build()})
        self._failures = 0
        log.info("byoh_agent_bootstrapped", host=self.hostname, role=role)

    async def _release(self, host: Obj) -> None:
        """The ByoMachine is gone: free the ByoHost; reset the host only if our own installer set it up."""
        if not self.skip_installation:
            if self._on_reset is not None:
                await self._on_reset()
            self.history.append("reset")
        self.history.append("release")
        # Status first: the host becomes claimable only when the labels go, and by then machineRef is gone.
        await self._patch_status({"machineRef": None, "conditions": self._waiting_conditions(host)})
        await self.client.patch(
            INFRA_VERSION,
            "ByoHost",
            self.hostname,
            self.namespace,
            {
                "metadata": {
                    "labels": {CLUSTER_NAME_LABEL: None, BYOMACHINE_NAME_LABEL: None},
                    "annotations": dict.fromkeys(CLAIM_ANNOTATIONS),
                },
                "spec": {"bootstrapSecret": None},
            },
        )
        log.info("byoh_agent_released", host=self.hostname, reset=not self.skip_installation)
