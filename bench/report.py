"""Benchmark results: one row per figure, printed as a table and written to ``bench/results/``."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Figure:
    bench: str
    metric: str
    ours: float
    unit: str
    peer: str = ""
    peer_value: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.peer_value in (None, 0):
            return None
        return self.ours / self.peer_value  # type: ignore[operator]


def machine() -> str:
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}"


def table(figures: list[Figure]) -> str:
    head = "| bench | metric | ours | peer | peer value | ratio | note |\n|---|---|---|---|---|---|---|\n"
    rows = []
    for f in figures:
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else ""
        peer_value = f"{f.peer_value:,.1f}" if f.peer_value is not None else ""
        rows.append(
            f"| {f.bench} | {f.metric} | {f.ours:,.1f} {f.unit} | {f.peer} | {peer_value} | {ratio} | {f.note} |"
        )
    return head + "\n".join(rows) + "\n"


def write(figures: list[Figure]) -> str:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"# Benchmark results\n\n{stamp} on {machine()}\n\n{table(figures)}"
    (RESULTS / "results.md").write_text(text)
    (RESULTS / "results.json").write_text(json.dumps([asdict(f) for f in figures], indent=1))
    return text
