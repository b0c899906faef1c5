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
from collections.abc import Callable
from pathlib import Path
from typing import Any

from o2ctl import client, stack, up
from o2ctl.state import RunState, state_dir
from sandbox.hosts.latency import PROFILES
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


#: The global flags, taken before or after the subcommand (like kubectl, helm and clusterctl).
GLOBAL_DEFAULTS: dict[str, Any] = {"state_dir": None, "nats_url": None, "kubeconfig": None, "output": "table"}
OUTPUTS = ("table", "json", "yaml")
#: ``--pace`` values: the sandbox hosts' latency profiles.
PACES = tuple(PROFILES)

#: One example per command, shown by ``--help``.
EXAMPLES = {
    "o2ctl": "o2ctl up --sandbox --detach && o2ctl plan --inventory examples/input.json --all -o yaml",
    "up": "o2ctl up --sandbox --detach        # then: export KUBECONFIG=.state/kubeconfig",
    "down": "o2ctl down --state-dir .state",
    "demo": "o2ctl demo --hosts 9 --keep",
    "validate": "o2ctl validate examples/input.json -o json",
    "schema": "o2ctl schema inventory > inventory.schema.json",
    "plan": "o2ctl plan --inventory examples/input.json --all -o yaml",
    "submit": "o2ctl submit --clusters edge,ran --wait",
    "approve": "o2ctl approve my-request --wait",
    "reject": "o2ctl reject my-request",
    "status": "o2ctl status all-clusters --watch",
    "events": "o2ctl events all-clusters -o json",
    "endpoints": "o2ctl endpoints -o json",
    "token": "o2ctl token --role reader --ttl 600",
    "kubeconfig": "o2ctl kubeconfig edge --out edge.kubeconfig",
    "host": "o2ctl host clear-quarantine host-004",
}


def _global_flags() -> argparse.ArgumentParser:
    """The global flags as a parent of the main parser and of every subcommand. Their defaults are
    suppressed so a value given on one side is never reset by the other; ``main`` fills in the rest."""
    g = argparse.ArgumentParser(add_help=False)
    g.add_argument(
        "--state-dir", default=argparse.SUPPRESS, help="where a running `o2ctl up` keeps its state (default ./.state)"
    )
    g.add_argument("--nats-url", default=argparse.SUPPRESS, help="NATS of a running system (default: the state dir's)")
    g.add_argument(
        "--kubeconfig", default=argparse.SUPPRESS, help="management cluster kubeconfig (default: the state dir's)"
    )
    g.add_argument("-o", "--output", choices=OUTPUTS, default=argparse.SUPPRESS, help="output format (default table)")
    return g


def _parser() -> argparse.ArgumentParser:
    common = _global_flags()

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=help_,
            description=help_,
            parents=[common],
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=f"example:\n  {EXAMPLES[name]}",
        )

    p = argparse.ArgumentParser(
        prog="o2ctl",
        description="Provision Kubernetes workload clusters on bare metal.",
        parents=[common],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"example:\n  {EXAMPLES['o2ctl']}",
    )
    sub = p.add_subparsers(dest="command", required=True)

    u = command("up", "run NATS and the five services (and, with --sandbox, a whole sandbox O-Cloud)")
    u.add_argument("--sandbox", action="store_true", help="also run the Kubernetes emulator, CAPI simulators, hosts")
    u.add_argument("--hosts", type=int, default=9, help="number of sandbox hosts (default 9)")
    u.add_argument("--inventory", type=Path, default=None, help="example inventory whose clusters the sandbox uses")
    u.add_argument("--detach", action="store_true", help="return once everything is ready")
    u.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="HOST_ID=SPEC",
        help="sandbox: inject a host fault (as `python -m sandbox.hosts --fault`; repeatable)",
    )
    u.add_argument(
        "--pace",
        choices=PACES,
        default="fast",
        help="sandbox: how long host commands take (realistic: apt installs 3 s, downloads 1 s, "
        "service restarts 0.5 s, agent registration 2 s; default fast)",
    )
    command("down", "stop everything `o2ctl up` started")
    d = command("demo", "the whole flow on a fresh sandbox, shown live, then stopped")
    d.add_argument("--hosts", type=int, default=9)
    d.add_argument("--timeout", type=float, default=300.0)
    d.add_argument("--keep", action="store_true", help="leave the sandbox running afterwards")
    d.add_argument(
        "--pace",
        choices=PACES,
        default="fast",
        help="realistic: sandbox hosts take as long as real ones, so each step can be watched (default fast)",
    )

    v = command("validate", "validate an inventory file, reporting every problem with its path")
    v.add_argument("inventory", type=Path)
    s = command("schema", "print a JSON Schema")
    s.add_argument("which", choices=["inventory", "request"])

    pl = command("plan", "validation, feasibility and the rendered CAPI manifests; changes nothing")
    pl.add_argument("--inventory", type=Path, help="inventory file (default: the running system's)")
    pl.add_argument("--cni", action="append", default=[], metavar="NAME=FILE", help="a CNI manifest to render with")
    pl.add_argument("--default-cni", help="CNI of clusters that name none")
    _add_request_args(pl)

    sm = command("submit", "publish a FOCOM request")
    _add_request_args(sm)
    sm.add_argument("--wait", action="store_true", help="follow it live until it settles")
    sm.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait with --wait")

    for verb, what in (
        ("approve", "approve a FOCOM request waiting in PendingApproval (change control)"),
        ("reject", "reject a FOCOM request waiting in PendingApproval; nothing was leased"),
    ):
        ap = command(verb, what)
        ap.add_argument("name")
        ap.add_argument("--wait", action="store_true", help="approve: follow it until it settles")
        ap.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait with --wait")

    st = command("status", "FOCOM requests and their clusters")
    st.add_argument("name", nargs="?")
    st.add_argument("--watch", action="store_true", help="follow one request until it settles")
    st.add_argument("--timeout", type=float, default=1800.0)

    ev = command("events", "a request's transition history from the streams")
    ev.add_argument("name")

    command("endpoints", "where the running system answers (O2IMS API, NATS, kubeconfig)")
    tk = command("token", "print a bearer token the running O2IMS API accepts")
    tk.add_argument("--role", action="append", default=[], help="a role (repeatable; default: every role)")
    tk.add_argument("--ttl", type=float, default=3600.0, help="lifetime in seconds (default 3600)")

    ho = command("host", "host leases; clear the quarantine of a host whose teardown failed")
    ho.add_argument("action", choices=["list", "clear-quarantine"])
    ho.add_argument("host_id", nargs="?", metavar="HOST", help="the host to clear (clear-quarantine)")

    kc = command("kubeconfig", "write a fulfilled workload cluster's kubeconfig")
    kc.add_argument("cluster")
    # `-o` is the global output format here too; the file is `--out`.
    kc.add_argument("--out", dest="out", type=Path, help="file to write (mode 0600); default stdout")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    args = _parser().parse_args(argv)
    for key, value in GLOBAL_DEFAULTS.items():
        if not hasattr(args, key):
            setattr(args, key, value)
    return args


def _up(args: argparse.Namespace) -> int:
    state = state_dir(args.state_dir)
    example = (args.inventory or stack.DEFAULT_EXAMPLE).resolve()
    if args.detach:
        argv = ["--state-dir", str(state), "up", "--hosts", str(args.hosts), "--inventory", str(example)]
        if args.sandbox:
            argv.append("--sandbox")
        for fault in args.fault:
            argv += ["--fault", fault]
        if args.pace != "fast":
            argv += ["--pace", args.pace]
        run = up.detach(state, argv)
        print(up.ready_message(run, state, args.output))
        return EXIT_OK
    if args.fault and not args.sandbox:
        raise client.UsageError("--fault needs --sandbox")
    if args.pace != "fast" and not args.sandbox:
        raise client.UsageError("--pace needs --sandbox")
    _check_faults(args.fault)
    return asyncio.run(
        up.run_foreground(
            state,
            sandbox=args.sandbox,
            hosts=args.hosts,
            example=example,
            faults=tuple(args.fault),
            output=args.output,
            pace=args.pace,
        )
    )


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
    return client.request_from_flags(
        name=args.name, all_clusters=args.all, clusters=args.clusters, operation=args.operation, file=args.file
    )


def _sandbox_key_dir(args: argparse.Namespace) -> Path | None:
    """A running sandbox's key directory: validate and plan its inventory as its focom does."""
    state = state_dir(args.state_dir)
    run = RunState.load(state)
    return stack.sandbox_key_dir(state) if run is not None and run.sandbox else None


def _validate(args: argparse.Namespace) -> int:
    from o2ctl import commands

    return commands.validate(args.inventory, args.output, ssh_key_dir=_sandbox_key_dir(args))


def _schema(args: argparse.Namespace) -> int:
    from o2ctl import commands

    return commands.schema(args.which)


def _plan(args: argparse.Namespace) -> int:
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
        cni = {stack.SANDBOX_CNI: stack.SANDBOX_CNI_FILE, **cni}
        default_cni = default_cni or stack.SANDBOX_CNI
    return asyncio.run(
        plan.plan(
            inventory,
            _request(args),
            output=args.output,
            t=t,
            cni=cni,
            default_cni=default_cni,
            ssh_key_dir=_sandbox_key_dir(args),
        )
    )


def _submit(args: argparse.Namespace) -> int:
    from o2ctl import commands

    return asyncio.run(
        commands.submit(_target(args), _request(args), wait=args.wait, timeout=args.timeout, output=args.output)
    )


def _decide(args: argparse.Namespace) -> int:
    from o2ctl import commands

    return asyncio.run(
        commands.decide(
            _target(args), args.name, args.command, wait=args.wait, timeout=args.timeout, output=args.output
        )
    )


def _status(args: argparse.Namespace) -> int:
    from o2ctl import commands

    return asyncio.run(
        commands.status(_target(args), args.name, watch=args.watch, timeout=args.timeout, output=args.output)
    )


def _events(args: argparse.Namespace) -> int:
    from o2ctl import commands

    return asyncio.run(commands.events(_target(args), args.name, args.output))


def _endpoints(args: argparse.Namespace) -> int:
    from o2ctl import endpoints

    return endpoints.endpoints(state_dir(args.state_dir), args.output)


def _token(args: argparse.Namespace) -> int:
    from o2ctl import endpoints

    return endpoints.token(state_dir(args.state_dir), args.role, args.ttl)


def _kubeconfig(args: argparse.Namespace) -> int:
    from o2ctl import commands

    return asyncio.run(commands.kubeconfig(_target(args), args.cluster, args.out, args.output))


def _host(args: argparse.Namespace) -> int:
    from o2ctl import hosts

    if args.action == "list":
        return asyncio.run(hosts.list_hosts(_target(args), args.output))
    if not args.host_id:
        raise client.UsageError("clear-quarantine needs the HOST to clear")
    return asyncio.run(hosts.clear_quarantine(_target(args), args.host_id))


def _demo(args: argparse.Namespace) -> int:
    from o2ctl import demo

    state = state_dir(args.state_dir or os.environ.get("O2CTL_STATE_DIR") or ".state/demo")
    return demo.run_demo(
        state, hosts=args.hosts, example=demo.DEFAULT_EXAMPLE, timeout=args.timeout, keep=args.keep, pace=args.pace
    )


#: Every command and the function that runs it (a test checks this matches the parser's commands).
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "up": _up,
    "down": _down,
    "demo": _demo,
    "validate": _validate,
    "schema": _schema,
    "plan": _plan,
    "submit": _submit,
    "approve": _decide,
    "reject": _decide,
    "status": _status,
    "events": _events,
    "endpoints": _endpoints,
    "token": _token,
    "kubeconfig": _kubeconfig,
    "host": _host,
}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Library log lines must not mix into command output (stdout): warnings and errors only, on stderr.
    configure_logging(level="warning", fmt="console")
    try:
        return COMMANDS[args.command](args)
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
