"""Smoke test of benchmarks/bench_codec.py: it still runs and its correctness checks pass.

Only the shape of the output is checked, never a timing or a ratio: speed is not a test
assertion (a loaded CI machine must not fail the suite).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_codec.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_codec_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_measure_interleaves_rounds_and_pairs_ratios(bench: ModuleType) -> None:
    group = bench.Group(
        "toy",
        "decode",
        "toy",
        1,
        [bench.Contender("dtncloud len", len, [b"ab"]), bench.Contender("other repr", repr, [1])],
    )
    settings = bench.Settings(rounds=3, slot_ns=200_000, warmup_ns=200_000)

    results = bench.measure(group, settings)

    assert [r.name for r in results] == ["dtncloud len", "other repr"]
    assert all(len(r.per_op_ns) == 3 and r.min_ns > 0 for r in results)
    (record,) = bench.group_ratios(results)
    assert (record["fast"], record["slow"]) == ("dtncloud len", "other repr")
    assert record["median"] > 0


def test_quick_run_checks_correctness_and_writes_json(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "figures.json"

    status = bench.main(["--quick", "--rounds", "2", "--slot-ms", "0.5", "--json", str(out)])

    assert status == 0
    text = capsys.readouterr().out
    assert "correctness checks passed" in text
    assert "encode  dtncloud/pyd3tn" in text or bench.p7 is None
    figures = json.loads(out.read_text())
    assert figures["correct"] is True
    assert len(figures["targets"]) == 3
    for group in figures["groups"]:
        for contender in group["contenders"]:
            assert len(contender["per_round_ns"]) == 2
            assert contender["median_ns"] > 0


def test_quick_run_without_pyd3tn_skips_its_targets(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(bench, "p7", None)
    out = tmp_path / "figures.json"

    status = bench.main(["--quick", "--rounds", "1", "--slot-ms", "0.5", "--json", str(out)])

    assert status == 0
    targets = json.loads(out.read_text())["targets"]
    assert [t["pass"] for t in targets if "pyd3tn" in t["pair"]] == [None, None]
