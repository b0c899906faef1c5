"""``python -m sandbox.hosts``: serve a pool of SSH sandbox hosts in the foreground until SIGTERM/SIGINT.

Writes ``DIR/inventory-hosts.json``, ``DIR/id_ed25519`` (+ ``.pub``) and ``DIR/known_hosts``, then prints
one JSON readiness line on stdout. SIGHUP re-reads ``--faults-file`` (a JSON object host_id -> fault spec
or null).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from pathlib import Path

import structlog

from shared.errors import InputError

from .faults import Fault
from .latency import PROFILES, LatencyProfile
from .pool import SandboxHostPool


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sandbox.hosts", description="Serve SSH sandbox hosts.")
    parser.add_argument("--count", type=int, required=True, help="number of hosts")
    parser.add_argument("--state-dir", type=Path, required=True, help="where keys, inventory and host dirs live")
    parser.add_argument("--user", default="root", help="login user of every host (default root)")
    parser.add_argument("--password-file", type=Path, help="file holding a login password (keys always work)")
    parser.add_argument("--first-address", default="127.0.1.1", help="first host address (127.0.0.0/8)")
    parser.add_argument(
        "--first-index", type=int, default=1, help="number of the first host (host-NNN/node-NNN; default 1)"
    )
    parser.add_argument("--port", type=int, default=0, help="SSH port shared by all hosts (default: a free one)")
    parser.add_argument("--agent-binary-url", help="URL that curl on the hosts resolves to the fake agent binary")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="HOST_ID=SPEC",
        help="inject a fault at start: kind, kind:regex, or a JSON object (repeatable)",
    )
    parser.add_argument("--faults-file", type=Path, help="JSON {host_id: spec|null} applied at start and on SIGHUP")
    parser.add_argument(
        "--latency",
        default="fast",
        metavar="PROFILE",
        help=f"CPU-free delays per command class: {', '.join(PROFILES)} (default fast) or a JSON "
        "object with package_install, download, service_restart, agent_registration seconds",
    )
    parser.add_argument(
        "--save-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="how long a host's state.json may lag behind it (default 0.25; a benchmark that reads no state "
        "while it runs sets 3600: written when the pool stops)",
    )
    parser.add_argument(
        "--kubeconfig",
        type=Path,
        help="accepted for symmetry; the agents read the bootstrap kubeconfig uploaded to each host",
    )
    return parser


def _parse_faults(specs: list[str]) -> dict[str, Fault | None]:
    out: dict[str, Fault | None] = {}
    for spec in specs:
        host_id, sep, rest = spec.partition("=")
        if not sep:
            raise SystemExit(f"--fault {spec!r}: expected HOST_ID=SPEC")
        out[host_id] = Fault.parse(rest)
    return out


def _read_faults_file(path: Path) -> dict[str, Fault | None]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return {k: None if v is None else Fault.parse(v if isinstance(v, str) else json.dumps(v)) for k, v in data.items()}


async def _serve(args: argparse.Namespace) -> None:
    password = args.password_file.read_text(encoding="utf-8").strip() if args.password_file else None
    pool = SandboxHostPool(
        args.state_dir,
        count=args.count,
        user=args.user,
        password=password,
        first_address=args.first_address,
        first_index=args.first_index,
        port=args.port,
        agent_binary_url=args.agent_binary_url,
        latency=LatencyProfile.parse(args.latency),
        **({"save_interval": args.save_interval} if args.save_interval is not None else {}),
    )
    faults = _parse_faults(args.fault)
    if args.faults_file:
        faults.update(_read_faults_file(args.faults_file))
    await pool.start()
    try:
        for host_id, fault in faults.items():
            pool.set_fault(host_id, fault)
        inventory = args.state_dir / "inventory-hosts.json"
        pool.write_inventory(inventory)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if args.faults_file:

            def reload() -> None:
                for host_id, fault in _read_faults_file(args.faults_file).items():
                    pool.set_fault(host_id, fault)

            loop.add_signal_handler(signal.SIGHUP, reload)
        ready = {"event": "sandbox_hosts_ready", "inventory": str(inventory), **pool.describe()}
        ready.pop("default_facts", None)
        sys.stdout.write(json.dumps(ready) + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await pool.stop()


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        _parse_faults(args.fault)
    except InputError as exc:
        parser.error(f"--fault: {exc}")
    try:
        LatencyProfile.parse(args.latency)
    except InputError as exc:
        parser.error(f"--latency: {exc}")
    if not 1 <= args.first_index <= 99_999:
        parser.error("--first-index: must be in [1, 99999]")
    if args.save_interval is not None and not 0 < args.save_interval <= 3600:
        parser.error("--save-interval: must be in (0, 3600] seconds")
    # Logs go to stderr so stdout carries only the readiness line.
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    # uvloop's event loop where it is installed: a pool's CPU goes mostly to SSH packets and shell commands,
    # each a few loop callbacks, and asyncio's pure-Python loop machinery is a good part of that.
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
