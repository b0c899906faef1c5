"""``o2ctl up`` and ``o2ctl down``: run the whole system (optionally on the sandbox) and stop it.

``up`` runs in the foreground as the supervisor of everything it starts and writes
``state.json`` for the other commands; ``--detach`` starts that same foreground process in its
own session and returns once it reports ready. ``down`` signals the supervisor, which stops its
children in reverse order and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from o2ctl import stack
from o2ctl.state import RunState, pid_alive
from o2ctl.supervisor import Supervisor
from shared.natsserver import EmbeddedNats

READY_TIMEOUT = 90.0


class UpError(Exception):
    """Something prevented ``up``; the message says what and where to look."""


async def _start_sandbox(
    sup: Supervisor, state: Path, hosts: int, example: Path, faults: tuple[str, ...], pace: str = "fast"
) -> Path:
    await sup.start(stack.kubeapi_child(state, stack.free_port()))
    await sup.start(stack.hosts_child(state, hosts, stack.free_port(), faults, latency=pace))
    await sup.wait_ready("kubeapi", READY_TIMEOUT)
    ready = await sup.wait_ready("hosts", READY_TIMEOUT)
    host_entries = json.loads(Path(ready["inventory"]).read_text())
    if isinstance(host_entries, dict):
        host_entries = host_entries.get("hosts", [])
    inventory = stack.sandbox_inventory(example, host_entries)
    path = state / "input.json"
    path.write_text(json.dumps(inventory, indent=1))
    return path


def ready_message(run: RunState, state: Path, output: str = "table") -> str:
    """What ``up`` says once ready: where NATS is and, on the sandbox, the ``KUBECONFIG`` to use."""
    api = stack.api_url(state) if "o2ims_api" in run.children else None
    focom_api = stack.focom_api_url(state) if "focom_api" in run.children else None
    if output == "json":
        return json.dumps(
            {
                "event": "o2ctl_up_ready",
                "nats_url": run.nats_url,
                "state_dir": str(state),
                "kubeconfig": run.kubeconfig,
                "o2ims_api": api,
                "focom_api": focom_api,
            }
        )
    lines = [f"ready: NATS {run.nats_url}, state in {state}"]
    if api:
        lines += [
            f"the O2IMS API: {api}",
            f'  curl -H "Authorization: Bearer $(o2ctl token)" {api}/o2ims-infrastructureInventory/v1',
        ]
    if focom_api:
        lines += [
            f"FOCOM's API: {focom_api}",
            f'  curl -H "Authorization: Bearer $(o2ctl token)" {focom_api}/provisioningRequests',
        ]
    if run.kubeconfig:
        lines += [
            "the sandbox management cluster, for kubectl:",
            f"  export KUBECONFIG={run.kubeconfig}",
            "  kubectl apply -f examples/focom-all-clusters.yaml && kubectl get fpr,oranpr",
        ]
    return "\n".join(lines)


async def run_foreground(
    state: Path,
    *,
    sandbox: bool,
    hosts: int,
    example: Path,
    faults: tuple[str, ...] = (),
    output: str = "table",
    pace: str = "fast",
) -> int:
    """Start everything, write ``state.json`` once ready, run until SIGTERM/SIGINT, stop everything."""
    previous = RunState.load(state)
    if previous and pid_alive(previous.supervisor_pid) and previous.supervisor_pid != os.getpid():
        raise UpError(f"already running (pid {previous.supervisor_pid}); run `o2ctl down --state-dir {state}` first")
    state.mkdir(parents=True, exist_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    port = int(json.loads((state / "nats.port").read_text())) if (state / "nats.port").exists() else -1
    passwords = stack.nats_passwords(state)
    nats = EmbeddedNats(
        state / "nats", port=port, log_file=state / "logs" / "nats.log", users=stack.nats_users(passwords)
    )
    (state / "logs").mkdir(parents=True, exist_ok=True)
    sup = Supervisor(state / "logs")
    run = RunState(supervisor_pid=os.getpid(), sandbox=sandbox)

    def record_children() -> None:
        # Keep the pids current across restarts so `down` can always find every child.
        run.children = {
            n: {"pid": c.pid, "log": str(c.log_path), "restarts": c.restarts} for n, c in sup.children.items()
        }
        run.save(state)

    sup.on_change = record_children
    try:
        await nats.start()
        (state / "nats.port").write_text(str(nats.port))
        run.nats_url = nats.url
        run.save(state)
        if sandbox:
            run.inventory = str(await _start_sandbox(sup, state, hosts, example, faults, pace))
            run.kubeconfig = str(state / "kubeconfig")
            run.save(state)
        for name in stack.SERVICES:
            env = stack.service_env(name, nats_url=nats.url, state=state, sandbox=sandbox, passwords=passwords)
            await sup.start(stack.service_child(name, env))
        for name in stack.SERVICES:
            await sup.wait_ready(name, READY_TIMEOUT)
        run.ready = True
        record_children()
        print(ready_message(run, state, output), flush=True)
        await stop.wait()
        return 0
    finally:
        run.ready = False
        run.save(state)
        sup.on_change = None
        await sup.stop()
        await nats.stop()
        run.supervisor_pid = None
        run.children = {}
        run.save(state)


def detach(state: Path, argv: list[str], timeout: float = READY_TIMEOUT * 2) -> RunState:
    """Start ``o2ctl up`` (foreground) in a new session and return once it is ready."""
    state.mkdir(parents=True, exist_ok=True)
    (state / "logs").mkdir(exist_ok=True)
    log_path = state / "logs" / "o2ctl-up.log"
    with contextlib.suppress(FileNotFoundError):
        (state / "state.json").unlink()
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "o2ctl", *argv],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=os.getcwd(),
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = RunState.load(state)
        if run and run.ready:
            return run
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace").splitlines()[-20:]
            raise UpError(f"o2ctl up exited with {proc.returncode}; last lines of {log_path}:\n" + "\n".join(tail))
        time.sleep(0.2)  # waiting for another process's readiness file, bounded by the deadline
    proc.terminate()
    raise UpError(f"not ready after {timeout:.0f}s; see {log_path}")


def down(state: Path, timeout: float = 60.0) -> bool:
    """Stop the supervisor of ``state``; returns False when nothing was running."""
    run = RunState.load(state)
    if run is None or not pid_alive(run.supervisor_pid):
        return False
    assert run.supervisor_pid is not None
    os.kill(run.supervisor_pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(run.supervisor_pid):
        if time.monotonic() > deadline:
            os.kill(run.supervisor_pid, signal.SIGKILL)
            break
        time.sleep(0.1)  # waiting for another process to exit, bounded by the deadline
    # Children are in their own sessions: make sure none outlives a supervisor that was killed.
    for child in run.children.values():
        pid = child.get("pid")
        if isinstance(pid, int) and pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return True
