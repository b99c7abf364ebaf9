"""Smoke test of benchmarks/bench_engine.py: it runs end to end on tiny sizes and reports its
three targets. Only the shape of the output is checked, never a figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_engine.py"


@pytest.mark.timeout(120)
def test_bench_engine_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(out)],
        capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    targets = [line for line in result.stdout.splitlines() if "target" in line]
    assert len(targets) == 3, result.stdout
    figures = json.loads(out.read_text())
    assert set(figures["rates"]) == {"engine+sqlite", "bare aiosqlite", "engine+memory"}
    assert all(rate > 0 for rate in figures["rates"].values())
    assert figures["index_mb"] > 0
    assert "Traceback" not in result.stderr
