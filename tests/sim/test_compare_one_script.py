"""``benchmarks/compare_one.py``: its traces and the dtncloud side of a run (the ONE side
needs a Java build of the ONE and is skipped without one)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "compare_one.py"
ONE_CLASSES = Path("/tmp/one-ref/classes")


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("compare_one", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["compare_one"] = module
    spec.loader.exec_module(module)
    return module


def test_traces_are_deterministic_and_well_formed(tmp_path: Path) -> None:
    script = _script()
    spec = script.TraceSpec(hosts=6, contacts=40, messages=10, duration_s=3000.0, seed=3)
    a = (tmp_path / "c1.txt", tmp_path / "m1.txt")
    b = (tmp_path / "c2.txt", tmp_path / "m2.txt")
    assert script.generate_traces(spec, *a) == script.generate_traces(spec, *b)
    assert a[0].read_text() == b[0].read_text()
    assert a[1].read_text() == b[1].read_text()
    up: set[tuple[str, str]] = set()
    last = 0.0
    for line in a[0].read_text().splitlines():
        time, kind, x, y, state = line.split()
        assert kind == "CONN" and float(time) >= last
        last = float(time)
        if state == "up":
            assert (x, y) not in up  # never up twice
            up.add((x, y))
        else:
            up.remove((x, y))
    assert not up
    lines = a[1].read_text().splitlines()
    assert len(lines) == 10
    assert all(line.split()[1] == "C" for line in lines)
    end, highest = script.trace_extent(*a)
    assert end <= 3000.0 and highest <= 5


def test_one_settings_name_the_router_and_links(tmp_path: Path) -> None:
    script = _script()
    run = script.RunSpec("spray_and_wait", 6, 100.0, None, 10**9, 5000, 120, 4, 1, 0.1)
    text = script.one_settings(run, tmp_path / "c", tmp_path / "m", tmp_path / "r")
    assert "Group.router = SprayAndWaitRouter" in text
    assert "SprayAndWaitRouter.nrofCopies = 4" in text
    assert "link.transmitSpeed = 1000000000" in text
    assert "Group.bufferSize = 5000" in text
    assert "Group.sendQueue = 2" in text
    assert "Scenario.simulateConnections = false" in text


def test_dtncloud_side_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = _script()
    argv = [
        "--router",
        "epidemic",
        "--hosts",
        "5",
        "--contacts",
        "20",
        "--messages",
        "5",
        "--duration",
        "2000",
        "--workdir",
        str(tmp_path),
        "--skip-one",
    ]
    assert script.main(argv) == 0
    out = capsys.readouterr().out
    assert '"created": 5' in out


@pytest.mark.skipif(
    not (ONE_CLASSES / "core" / "DTNSim.class").exists() or shutil.which("java") is None,
    reason="no ONE build in /tmp/one-ref/classes",
)
def test_both_sides_agree_on_direct_delivery(tmp_path: Path) -> None:
    script = _script()
    out = tmp_path / "cmp.json"
    argv = [
        "--router",
        "direct",
        "--hosts",
        "5",
        "--contacts",
        "30",
        "--messages",
        "8",
        "--duration",
        "3000",
        "--workdir",
        str(tmp_path),
        "--json",
        str(out),
    ]
    assert script.main(argv) == 0
    import json

    rows = {row["figure"]: row for row in json.loads(out.read_text())["rows"]}
    assert rows["created"]["one"] == rows["created"]["dtncloud"] == 8
    assert rows["delivered"]["one"] == rows["delivered"]["dtncloud"]


def test_missing_one_build_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = _script()
    assert script.main(["--one-classes", str(tmp_path / "none")]) == 2
    assert "no ONE build" in capsys.readouterr().err
