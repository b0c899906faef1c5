"""``python -m bench [name ...]``: run the benchmarks and print/write one results table."""

from __future__ import annotations

import asyncio
import importlib
import sys

from bench.report import Figure, write
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


async def _main(names: list[str]) -> None:
    figures: list[Figure] = []
    for module in BENCHES:
        if names and module.rsplit(".", 1)[-1] not in names:
            continue
        print(f"running {module} …", file=sys.stderr, flush=True)
        figures.extend(await importlib.import_module(module).run())
    print(write(figures))


if __name__ == "__main__":
    # Services in production log one line per message at info; benchmarks measure the bus, not stderr.
    configure_logging(level="warning", fmt="json")
    asyncio.run(_main(sys.argv[1:]))
