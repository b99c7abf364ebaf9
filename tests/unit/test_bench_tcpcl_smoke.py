"""Smoke test of benchmarks/bench_tcpcl.py: it runs end to end on tiny sizes and reports its
three checks. Only the shape of the output is checked, never a figure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_tcpcl.py"


@pytest.mark.timeout(120)
def test_bench_tcpcl_runs_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--size-mib", "2", "--count", "50", "--rounds", "1",
         "--spool-dir", str(tmp_path), "--json", str(out)],
        capture_output=True, text=True, timeout=110,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    checks = [line for line in result.stdout.splitlines() if line.startswith(("met ", "MISSED"))]
    assert len(checks) == 3, result.stdout
    figures = json.loads(out.read_text())
    assert figures["bulk"]["dtncloud_mb_s"] > 0 and figures["many"]["bundles_per_s"] > 0
    assert "Traceback" not in result.stderr
