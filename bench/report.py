"""Benchmark results: one row per figure, printed as a table or JSON and written to ``bench/results/``.

Every figure has a stable ``id`` (``<area>.<name>``) so that scripts can compare runs; the ids are part
of the benchmarks' interface and change only deliberately.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
#: Raw samples of this run by series name (for charts such as a latency CDF); benches add to it.
SERIES: dict[str, list[float]] = {}


@dataclass(frozen=True)
class Figure:
    bench: str
    metric: str
    ours: float
    unit: str
    peer: str = ""
    peer_value: float | None = None
    note: str = ""
    #: Stable identifier (empty: derived from bench and metric, not guaranteed stable).
    id: str = ""

    @property
    def ratio(self) -> float | None:
        if self.peer_value in (None, 0):
            return None
        return self.ours / self.peer_value

    @property
    def key(self) -> str:
        if self.id:
            return self.id
        slug = "".join(c if c.isalnum() else "_" for c in self.metric.lower()).strip("_")
        while "__" in slug:
            slug = slug.replace("__", "_")
        return f"{self.bench}.{slug}"


def machine() -> str:
    load = ""
    if hasattr(os, "getloadavg"):
        load = ", load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{platform.node()} {platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}{load}"


def table(figures: list[Figure]) -> str:
    head = "| id | metric | ours | peer | peer value | ratio | note |\n|---|---|---|---|---|---|---|\n"
    rows = []
    for f in figures:
        ratio = f"{f.ratio:.2f}" if f.ratio is not None else ""
        peer_value = f"{f.peer_value:,.2f}" if f.peer_value is not None else ""
        rows.append(
            f"| `{f.key}` | {f.metric} | {f.ours:,.2f} {f.unit} | {f.peer} | {peer_value} | {ratio} | {f.note} |"
        )
    return head + "\n".join(rows) + "\n"


def as_json(figures: list[Figure]) -> list[dict[str, Any]]:
    out = []
    for f in figures:
        row = asdict(f)
        row["id"] = f.key
        row["ratio"] = f.ratio
        out.append(row)
    return out


def write(figures: list[Figure], charts: list[Path] | None = None) -> str:
    """Write results.md/results.json (merged with earlier figures of other benches) and return the table."""
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = f"# Benchmark results\n\n{stamp} on {machine()}\n\n{table(figures)}"
    for chart in charts or []:
        text += f"\n![{chart.stem}]({chart.name})\n"
    (RESULTS / "results.md").write_text(text)
    (RESULTS / "results.json").write_text(json.dumps(as_json(figures), indent=1))
    (RESULTS / "series.json").write_text(json.dumps(SERIES))
    return text


def merged(figures: list[Figure], directory: Path = RESULTS) -> list[Figure]:
    """The figures of an earlier run in ``directory`` (and its series), with this run's replacing equal ids."""
    try:
        rows = json.loads((directory / "results.json").read_text())
        series = json.loads((directory / "series.json").read_text())
    except FileNotFoundError:
        return figures
    fresh = {f.key for f in figures}
    names = set(Figure.__dataclass_fields__)
    earlier = [Figure(**{k: v for k, v in row.items() if k in names}) for row in rows if row["id"] not in fresh]
    for name, values in series.items():
        SERIES.setdefault(name, values)
    return earlier + figures
