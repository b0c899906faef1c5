"""Benchmark figures as JSON: stable ids, the ids the fan-out bench promises, and the CLI's choices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import parse_args, render
from bench.charts import _series, draw
from bench.hostprep_figures import Run, figures
from bench.report import SERIES, Figure, as_json, merged


def test_json_rows_carry_explicit_or_derived_ids() -> None:
    rows = as_json(
        [
            Figure("e2e_scale", "CPU per cluster", 0.25, "s", id="e2e.cpu_s_per_cluster"),
            Figure("bus", "Messages/s (1 KiB)", 900.0, "msg/s", peer="x", peer_value=300.0),
        ]
    )
    assert rows[0]["id"] == "e2e.cpu_s_per_cluster" and rows[0]["ours"] == 0.25 and rows[0]["ratio"] is None
    assert rows[1]["id"] == "bus.messages_s_1_kib" and rows[1]["ratio"] == pytest.approx(3.0)
    assert json.loads(render([Figure("b", "m", 1.0, "s", id="b.m")], "json", table="unused"))[0]["id"] == "b.m"


def test_fanout_figures_have_the_promised_ids_and_values() -> None:
    ours = {
        1: Run(1, wall=10.0, cpu=0.2, sandbox_cpu=0.3),
        200: Run(200, wall=12.0, cpu=10.0, sandbox_cpu=40.0, peak_rss_mib=150.0, base_rss_mib=90.0, peak_fds=420),
    }
    peer = {1: Run(1, wall=20.0, cpu=3.0, sandbox_cpu=0.3), 200: Run(200, wall=60.0, cpu=300.0, sandbox_cpu=50.0)}
    by_id = {f.key: f for f in figures(ours, peer, concurrency=200)}
    assert by_id["hostprep.wall_ratio_200"].ours == pytest.approx(1.2)
    assert by_id["hostprep.cpu_per_host_ms"].ours == pytest.approx(50.0)  # 10 CPU-s over 200 hosts
    assert by_id["ansible.cpu_per_host_ms"].ours == pytest.approx(1500.0)
    assert by_id["hostprep.cpu_per_host_ms"].ratio == pytest.approx(50.0 / 1500.0)
    assert by_id["ansible.wall_ratio_200"].ours == pytest.approx(3.0)
    assert by_id["hostprep.rss_kib_per_connection"].ours == pytest.approx(1024 * 60.0 / 200)
    assert by_id["hostprep.peak_fds"].ours == 420
    assert _series(list(by_id.values()), "hostprep.wall_s_") == [(1, 10.0), (200, 12.0)]


def test_cli_takes_names_and_json_output() -> None:
    args = parse_args(["hostprep_fanout", "e2e_scale", "-o", "json"])
    assert args.names == ["hostprep_fanout", "e2e_scale"] and args.output == "json"
    assert parse_args([]).output == "table"
    with pytest.raises(SystemExit):
        parse_args(["no_such_bench"])


def test_merge_keeps_earlier_figures_and_replaces_equal_ids(tmp_path: Path) -> None:
    earlier = [Figure("a", "old", 1.0, "s", id="a.kept"), Figure("a", "old", 2.0, "s", id="a.replaced")]
    (tmp_path / "results.json").write_text(json.dumps(as_json(earlier)))
    (tmp_path / "series.json").write_text(json.dumps({"status.x_latency_ms": [1.0, 2.0]}))
    out = {f.key: f.ours for f in merged([Figure("a", "new", 3.0, "s", id="a.replaced")], tmp_path)}
    assert out == {"a.kept": 1.0, "a.replaced": 3.0}
    assert SERIES.pop("status.x_latency_ms") == [1.0, 2.0]


def test_e2e_figures_have_the_promised_ids() -> None:
    from bench.e2e_scale import Result
    from bench.e2e_scale import figures as e2e_figures

    def result(n: int, rss: float, hostprep_peak: float) -> Result:
        cpu = {
            "focom": 0.01 * n,
            "o2ims": 0.2 * n,
            "hostprep": 0.1 * n,
            "capi_renderer": 0.02 * n,
            "status_watcher": 0.02 * n,
            "o2ims_api": 5.0 * n,
        }
        peaks = {s: hostprep_peak if s == "hostprep" else rss for s in cpu}  # hostprep peaks while it prepares
        return Result(
            n,
            synced_s=n / 2,
            cpu_s=cpu,
            rss_mib={s: rss for s in cpu},
            messages_per_cluster=140.0,
            rss_peak_mib=peaks,
            messages_by_stream={"O2IMS": 40.0, "HOSTPREP": 100.0},
        )

    by_id = {f.key: f for f in e2e_figures({10: result(10, 80.0, 120.0), 300: result(300, 100.0, 165.0)})}
    assert by_id["e2e.cpu_s_per_cluster"].ours == pytest.approx(0.35)  # the five services; o2ims_api apart
    assert by_id["e2e.cpu_s_per_cluster_o2ims_api_300"].ours == pytest.approx(5.0)
    # Peaks are compared, each service's own; the largest growth is hostprep's, and the note names it.
    assert by_id["e2e.rss_growth_300_over_10"].ours == pytest.approx(1.375)
    assert by_id["e2e.rss_growth_300_over_10"].note == "aim: <= 1.5; hostprep 120 → 165 MiB"
    assert by_id["e2e.rss_mib_o2ims_10"].ours == 80.0 and by_id["e2e.rss_mib_o2ims_300"].ours == 100.0
    assert by_id["e2e.cpu_growth_exponent"].ours == pytest.approx(1.0)
    assert by_id["e2e.messages_per_cluster_300"].ours == 140.0
    assert by_id["e2e.messages_per_cluster_300"].note == "HOSTPREP 100.0, O2IMS 40.0"


def test_hostprep_charts_show_wall_time_goals_and_cpu_per_host_by_process(tmp_path: Path) -> None:
    ours = {n: Run(n, wall=14.0 + n / 100, cpu=0.05 * n, sandbox_cpu=0.1 * n, load=3.5) for n in (1, 50, 200)}
    peer = {n: Run(n, wall=20.0 + n / 10, cpu=0.5 * n, sandbox_cpu=0.1 * n) for n in (1, 50)}
    found = figures(ours, peer, concurrency=200)
    assert "load average 3.5" in next(f for f in found if f.key == "hostprep.wall_s_200").note
    written = draw(found, tmp_path)
    names = {p.name for p in written}
    assert {"hostprep_wall.png", "hostprep_cpu_per_host.png"} <= names
    for path in written:
        assert path.read_bytes().startswith(b"\x89PNG")


def test_collapsed_stacks_are_summarised_by_own_and_inclusive_samples(tmp_path: Path) -> None:
    from bench.stacks import load, summary

    raw = tmp_path / "n10-o2ims.txt"
    raw.write_text(
        "main (app.py:1);handle (engine.py:5);decode (store.py:9) 6\n"
        "main (app.py:1);handle (engine.py:5) 2\n"
        "main (app.py:1);flush (engine.py:9) 2\n"
    )
    stacks = load(raw)
    assert sum(stacks.values()) == 10
    text = summary(stacks, top=2)
    own, inclusive = text.split("-- inclusive")
    assert "60.0%  decode (store.py:9)" in own and "20.0%  handle (engine.py:5)" in own
    assert "100.0%  main (app.py:1)" in inclusive and "80.0%  handle (engine.py:5)" in inclusive
    assert "flush" not in summary(stacks, top=5, match="decode")
