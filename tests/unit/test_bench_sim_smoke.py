"""Smoke test of benchmarks/bench_sim.py: its main runs end to end on a tiny scenario and
prints its figures. Only the shape of the output is checked, never a timing."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_sim.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_sim", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(120)
def test_bench_sim_runs_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "figures.json"
    argv = ["--nodes", "20", "--messages", "50", "--contacts", "200", "--hours", "2"]
    argv += ["--epidemic-nodes", "10", "--json", str(out)]
    assert load_script().main(argv) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert any(line.startswith("bare heapq loop:") and "events/s" in line for line in lines)
    for router in ("spray_and_wait", "epidemic"):
        (line,) = [line for line in lines if line.startswith(router)]
        for figure in ("s wall", "events/s", "of bare heapq", "delivered"):
            assert figure in line, line
    assert "[10 nodes, contacts and messages scaled to 100 and 25" in captured.out
    (target,) = [line for line in lines if line.startswith("target:")]
    assert ": met" in target or ": MISSED" in target
    assert "not the issue's full scenario" in target
    assert "spray_and_wait:" in captured.err  # progress goes to stderr

    figures = json.loads(out.read_text())
    assert figures["scenario"]["nodes"] == 20 and not figures["scenario"]["full"]
    assert figures["baseline_events_per_s"] > 0
    saw, epi = figures["spray_and_wait"], figures["epidemic"]
    assert saw["nodes"] == 20 and saw["created"] == 50 and saw["events"] > 0
    assert epi["nodes"] == 10 and epi["created"] == 25 and epi["scaled_down"]
    assert 0 <= saw["delivered"] <= 50 and saw["ratio_to_baseline"] > 0
