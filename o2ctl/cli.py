"""The ``o2ctl`` command line: argument parsing and dispatch; each command lives in its own module.

Exit codes: 0 success, 1 the operation failed (a cluster failed, a request was refused, a plan is
infeasible), 2 usage or input errors (bad arguments, invalid files, unknown names), 3 the system is
not reachable (nothing running, NATS down), 4 not ready yet (e.g. a kubeconfig asked for before the
cluster is fulfilled).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from o2ctl import client, stack, up
from o2ctl.state import RunState, state_dir
from shared.errors import InputError, ServiceError
from shared.kinds import OPERATIONS
from shared.logging import configure_logging
from shared.payloads import FocomRequest

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_READY = 0, 1, 2, 3, 4


def _add_request_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--all", action="store_true", help="every cluster of the inventory")
    p.add_argument("--clusters", help="comma-separated cluster names")
    p.add_argument("-f", "--file", type=Path, help="a request file (FocomProvisioningRequest YAML or a bare request)")
    p.add_argument("--name", help="the request's name (default: derived from the selection)")
    p.add_argument("--operation", choices=OPERATIONS, default="create")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="o2ctl", description="Provision Kubernetes workload clusters on bare metal.")
    p.add_argument("--state-dir", help="where a running `o2ctl up` keeps its state (default ./.state)")
    p.add_argument("--nats-url", help="NATS of a running system (default: from the state dir)")
    p.add_argument("--kubeconfig", help="management cluster kubeconfig (default: from the state dir)")
    p.add_argument("-o", "--output", choices=["table", "json", "yaml"], default="table", help="output format")
    sub = p.add_subparsers(dest="command", required=True)

    u = sub.add_parser("up", help="run NATS and the five services (and, with --sandbox, a whole sandbox O-Cloud)")
    u.add_argument("--sandbox", action="store_true", help="also run the Kubernetes emulator, CAPI simulators, hosts")
    u.add_argument("--hosts", type=int, default=9, help="number of sandbox hosts (default 9)")
    u.add_argument("--inventory", type=Path, default=None, help="example inventory whose clusters the sandbox uses")
    u.add_argument("--detach", action="store_true", help="return once everything is ready")
    u.add_argument("--fault", action="append", default=[], metavar="HOST_ID=SPEC",
                   help="sandbox: inject a host fault (as `python -m sandbox.hosts --fault`; repeatable)")
    sub.add_parser("down", help="stop everything `o2ctl up` started")
    d = sub.add_parser("demo", help="the whole flow on a fresh sandbox, shown live, then stopped")
    d.add_argument("--hosts", type=int, default=9)
    d.add_argument("--timeout", type=float, default=300.0)
    d.add_argument("--keep", action="store_true", help="leave the sandbox running afterwards")

    v = sub.add_parser("validate", help="validate an inventory file, reporting every problem with its path")
    v.add_argument("inventory", type=Path)
    s = sub.add_parser("schema", help="print a JSON Schema")
    s.add_argument("which", choices=["inventory", "request"])

    pl = sub.add_parser("plan", help="validation, feasibility and the rendered CAPI manifests; changes nothing")
    pl.add_argument("--inventory", type=Path, help="inventory file (default: the running system's)")
    pl.add_argument("--cni", action="append", default=[], metavar="NAME=FILE", help="a CNI manifest to render with")
    pl.add_argument("--default-cni", help="CNI of clusters that name none")
    _add_request_args(pl)

    sm = sub.add_parser("submit", help="publish a FOCOM request")
    _add_request_args(sm)
    sm.add_argument("--wait", action="store_true", help="follow it live until it settles")
    sm.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait with --wait")

    st = sub.add_parser("status", help="FOCOM requests and their clusters")
    st.add_argument("name", nargs="?")
    st.add_argument("--watch", action="store_true", help="follow one request until it settles")
    st.add_argument("--timeout", type=float, default=1800.0)

    ev = sub.add_parser("events", help="a request's transition history from the streams")
    ev.add_argument("name")

    sub.add_parser("endpoints", help="where the running system answers (O2IMS API, NATS, kubeconfig)")
    tk = sub.add_parser("token", help="print a bearer token the running O2IMS API accepts")
    tk.add_argument("--role", action="append", default=[], help="a role (repeatable; default: every role)")
    tk.add_argument("--ttl", type=float, default=3600.0, help="lifetime in seconds (default 3600)")

    kc = sub.add_parser("kubeconfig", help="write a fulfilled workload cluster's kubeconfig")
    kc.add_argument("cluster")
    kc.add_argument("-o", "--out", dest="out", type=Path, help="file to write (mode 0600); default stdout")
    return p


def _up(args: argparse.Namespace) -> int:
    state = state_dir(args.state_dir)
    example = (args.inventory or stack.DEFAULT_EXAMPLE).resolve()
    if args.detach:
        argv = ["--state-dir", str(state), "up", "--hosts", str(args.hosts), "--inventory", str(example)]
        if args.sandbox:
            argv.append("--sandbox")
        for fault in args.fault:
            argv += ["--fault", fault]
        run = up.detach(state, argv)
        print(f"ready: NATS {run.nats_url}, state in {state}")
        return EXIT_OK
    if args.fault and not args.sandbox:
        raise client.UsageError("--fault needs --sandbox")
    _check_faults(args.fault)
    return asyncio.run(up.run_foreground(state, sandbox=args.sandbox, hosts=args.hosts, example=example,
                                         faults=tuple(args.fault)))  # fmt: skip


def _check_faults(specs: list[str]) -> None:
    from sandbox.hosts.faults import Fault

    for spec in specs:
        host_id, sep, fault = spec.partition("=")
        if not sep or not host_id:
            raise client.UsageError(f"--fault {spec!r}: expected HOST_ID=SPEC")
        Fault.parse(fault)  # an InputError names what is wrong


def _down(args: argparse.Namespace) -> int:
    state = state_dir(args.state_dir)
    print(f"stopped everything started from {state}" if up.down(state) else f"nothing running from {state}")
    return EXIT_OK


def _target(args: argparse.Namespace) -> client.Target:
    return client.target(state_dir(args.state_dir), args.nats_url, args.kubeconfig)


def _request(args: argparse.Namespace) -> FocomRequest:
    return client.request_from_flags(name=args.name, all_clusters=args.all, clusters=args.clusters,
                                     operation=args.operation, file=args.file)  # fmt: skip


def _run(args: argparse.Namespace) -> int:
    from o2ctl import commands

    cmd = args.command
    if cmd == "validate":
        return commands.validate(args.inventory, args.output)
    if cmd == "schema":
        return commands.schema(args.which)
    if cmd == "plan":
        from o2ctl import plan

        inventory = args.inventory
        t: client.Target | None = None
        try:
            t = _target(args)
        except client.Unreachable:
            t = None
        run = RunState.load(state_dir(args.state_dir))
        if inventory is None:
            if run is None or not run.inventory:
                raise client.UsageError("no --inventory given and no running system to take it from")
            inventory = Path(run.inventory)
        cni, default_cni = plan.parse_cni(args.cni), args.default_cni
        if run is not None and run.sandbox:
            # Plan with what the sandbox's renderer is configured with.
            cni = {stack.SANDBOX_CNI: stack.REPO / "examples" / "cni" / "bridge-pool.yaml", **cni}
            default_cni = default_cni or stack.SANDBOX_CNI
        return asyncio.run(plan.plan(inventory, _request(args), output=args.output, t=t, cni=cni,
                                     default_cni=default_cni))  # fmt: skip
    if cmd == "submit":
        return asyncio.run(commands.submit(_target(args), _request(args), wait=args.wait, timeout=args.timeout,
                                           output=args.output))  # fmt: skip
    if cmd == "status":
        return asyncio.run(commands.status(_target(args), args.name, watch=args.watch, timeout=args.timeout,
                                           output=args.output))  # fmt: skip
    if cmd == "events":
        return asyncio.run(commands.events(_target(args), args.name, args.output))
    if cmd in ("endpoints", "token"):
        from o2ctl import endpoints

        state = state_dir(args.state_dir)
        if cmd == "endpoints":
            return endpoints.endpoints(state, args.output)
        return endpoints.token(state, args.role, args.ttl)
    if cmd == "kubeconfig":
        return asyncio.run(commands.kubeconfig(_target(args), args.cluster, args.out, args.output))
    raise AssertionError(cmd)


def _demo(args: argparse.Namespace) -> int:
    from o2ctl import demo

    state = state_dir(args.state_dir or os.environ.get("O2CTL_STATE_DIR") or ".state/demo")
    return demo.run_demo(state, hosts=args.hosts, example=demo.DEFAULT_EXAMPLE, timeout=args.timeout, keep=args.keep)


COMMANDS = {"up": _up, "down": _down, "demo": _demo}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Library log lines must not mix into command output (stdout): warnings and errors only, on stderr.
    configure_logging(level="warning", fmt="console")
    try:
        handler = COMMANDS.get(args.command)
        return handler(args) if handler else _run(args)
    except up.UpError as exc:
        print(f"o2ctl {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except client.Unreachable as exc:
        print(f"o2ctl {args.command}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except (client.UsageError, InputError) as exc:
        print(f"o2ctl {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ServiceError as exc:
        print(f"o2ctl {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_OK
