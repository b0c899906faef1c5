"""Command line: serve the emulator in the foreground until SIGTERM/SIGINT.

    python -m sandbox.kubeapi --port P --crds DIR [--crds DIR ...] --kubeconfig-out FILE [--simulate-capi]
        [--capi-options JSON]

Prints one JSON readiness line (url, kubeconfig path) on stdout; logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import structlog

from .server import KubeApiServer

log = structlog.get_logger(__name__)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox.kubeapi", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--crds", action="append", type=Path, default=[], metavar="DIR", help="directory of CRD YAML files (repeatable)"
    )
    parser.add_argument("--kubeconfig-out", type=Path, required=True, metavar="FILE")
    parser.add_argument("--history-size", type=int, default=1000)
    parser.add_argument("--state-dir", type=Path, default=None, help="persist objects here across restarts")
    parser.add_argument("--simulate-capi", action="store_true", help="also run the simulated CAPI/BYOH controllers")
    parser.add_argument(
        "--capi-options",
        type=_json_object,
        default={},
        metavar="JSON",
        help='SimOptions fields for --simulate-capi, e.g. \'{"fail_bootstrap_hosts": ["node-003"]}\'',
    )
    return parser.parse_args(argv)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object of SimOptions fields")
    return value


def _simulator_entry() -> Callable[..., Coroutine[Any, Any, None]]:
    try:
        from sandbox.capi import run_simulators
    except ImportError as exc:
        raise SystemExit(f"--simulate-capi needs sandbox.capi.run_simulators, which is not available: {exc}") from exc
    entry: Callable[..., Coroutine[Any, Any, None]] = run_simulators
    return entry


async def _serve(args: argparse.Namespace) -> None:
    simulate = _simulator_entry() if args.simulate_capi else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = KubeApiServer(
        crd_dirs=args.crds, host=args.host, port=args.port, history_size=args.history_size, state_dir=args.state_dir
    )
    await server.start()
    tasks: list[asyncio.Task[Any]] = []
    failed = False
    try:
        path = await asyncio.to_thread(server.write_kubeconfig, args.kubeconfig_out)
        if simulate is not None:
            tasks.append(asyncio.create_task(simulate(path, stop=stop, **args.capi_options), name="capi-simulators"))
        sys.stdout.write(json.dumps({"ready": True, "url": server.url, "kubeconfig": str(path)}) + "\n")
        sys.stdout.flush()
        # Simulators that stopped on their own would leave every cluster waiting for ever: stop too, so that
        # whoever supervises the emulator sees it and starts it again.
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([stopping, *tasks], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
    finally:
        stop.set()
        try:
            for task in tasks:
                try:
                    await asyncio.wait_for(task, timeout=10)
                except (asyncio.CancelledError, TimeoutError):
                    pass
                except Exception:
                    failed = True
                    log.exception("capi_simulators_failed")
        finally:
            # Saves the state (with --state-dir) whatever happened to the simulators.
            await server.stop()
    if failed:
        raise SystemExit(1)


def _check_capi_options(args: argparse.Namespace) -> None:
    """Refuse bad simulator options at start, naming the field, rather than inside the simulator task."""
    if not args.capi_options:
        return
    if not args.simulate_capi:
        raise SystemExit("--capi-options needs --simulate-capi")
    from pydantic import ValidationError

    from sandbox.capi.options import SimOptions

    try:
        SimOptions(**args.capi_options)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise SystemExit(f"--capi-options: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    _check_capi_options(args)
    structlog.configure(
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    # uvloop's event loop where it is installed: the emulator's CPU goes to TLS, HTTP and watch streams,
    # each a few loop callbacks, and asyncio's pure-Python loop machinery is a good part of that.
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
