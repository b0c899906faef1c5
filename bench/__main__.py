"""``python -m bench [NAME ...] [-o table|json]``: run benchmarks, write ``bench/results/``, print the figures.

``-o json`` prints a JSON list of figures, each with a stable ``id`` (see ``bench.report``), for scripts
that compare runs. ``results.md`` and the PNG charts are written either way.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys

from bench.charts import draw
from bench.report import RESULTS, Figure, as_json, merged, write
from shared.logging import configure_logging

#: Modules with ``async def run() -> list[Figure]``; later benchmarks append here.
BENCHES = [
    "bench.bus_throughput",
    "bench.sandbox_scale",
    "bench.render_validate",
    "bench.focom_fanout",
    "bench.o2ims_throughput",
    "bench.hostprep_fanout",
    "bench.status_latency",
    "bench.status_e2e_latency",
    "bench.e2e_scale",
]


def parse_args(argv: list[str]) -> argparse.Namespace:
    names = [m.rsplit(".", 1)[-1] for m in BENCHES]
    p = argparse.ArgumentParser(prog="python -m bench", description="Run the benchmarks (all by default).")
    p.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(names)}")
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")
    p.add_argument(
        "--merge",
        action="store_true",
        help="keep the figures of the previous run in bench/results/ (this run's replace equal ids)",
    )
    args = p.parse_args(argv)
    unknown = sorted(set(args.names) - set(names))
    if unknown:
        p.error(f"unknown benchmark {', '.join(unknown)}; expected some of {', '.join(names)}")
    return args


def render(figures: list[Figure], output: str, table: str) -> str:
    """What ``-o`` prints: the markdown table, or the figures as JSON with stable ids."""
    return json.dumps(as_json(figures), indent=1) if output == "json" else table


async def _main(args: argparse.Namespace) -> None:
    figures: list[Figure] = []
    for module in BENCHES:
        if args.names and module.rsplit(".", 1)[-1] not in args.names:
            continue
        print(f"running {module} …", file=sys.stderr, flush=True)
        figures.extend(await importlib.import_module(module).run())
    if args.merge:
        figures = merged(figures)
    table = write(figures, draw(figures, RESULTS))
    print(render(figures, args.output, table))


if __name__ == "__main__":
    # The in-process benchmarks measure the bus, not stderr (each handled message has a line at debug).
    configure_logging(level="warning", fmt="json")
    asyncio.run(_main(parse_args(sys.argv[1:])))
