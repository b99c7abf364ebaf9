"""``dtncloud sim run``, ``sim compare`` and ``sim sweep`` end to end, and every scenario in
``simulations/`` loading and running (shortened)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dtncloud.cli import cli
from dtncloud.sim.runner import run_scenario
from dtncloud.sim.scenario import load_scenario

SIMULATIONS = Path(__file__).resolve().parents[2] / "simulations"
SCENARIOS = sorted(SIMULATIONS.glob("*.toml"))

TINY = """# three nodes, a ferry between two of them
duration = "2h"
seed = 4
occupancy_every = "5m"

[[group]]
name = "n"
count = 3
buffer = "1MiB"

[[contacts]]
type = "mesh"
nodes = ["n-1", "n-2"]
down = [["30m", "1h"]]
link = { rate = "1Mbit/s", delay = "10ms" }

[[contacts]]
type = "random"
nodes = ["n-2", "n-3"]
pair_rate = "4/h"
duration = "3m"

[[traffic]]
from = "n-1"
to = "n-3"
interval = { dist = "exponential", mean = "2m" }
size = { dist = "uniform", min = "100B", max = "20KiB" }
lifetime = "1h"
"""

TEXT_FILES = ("report.json", "report.csv", "nodes.csv", "occupancy.csv", "messages.csv")


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(arg) for arg in args])


def test_run_twice_gives_identical_reports(tiny: Path) -> None:
    first = invoke("sim", "run", tiny, "--out", "one")
    assert first.exit_code == 0, first.output
    second = invoke("sim", "run", tiny, "--out", "two")
    assert second.exit_code == 0, second.output
    for name in TEXT_FILES:
        assert Path("one", name).read_bytes() == Path("two", name).read_bytes(), name
    assert Path("one", "delivery.png").is_file()
    report = json.loads(Path("one", "report.json").read_text())
    assert report["created"] > 10 and report["delivered"] > 0
    assert report["scenario"]["seed"] == 4 and report["scenario"]["routers"] == {"n": "epidemic"}
    lines = first.stdout.splitlines()
    assert lines[0].startswith("ran tiny (seed 4, epidemic): 3 nodes")
    assert lines[1].startswith(f"delivered {report['delivered']} of {report['created']}")
    assert lines[-1] == "wrote the reports to one"


def test_run_with_seed_router_and_settings(tiny: Path) -> None:
    result = invoke(
        "sim", "run", tiny, "--out", "r", "--seed", 9, "--router", "spray_and_wait",
        "--set", "duration=1h", "--set", "group.n.router_params={ copies = 2 }", "--no-plots",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(Path("r", "report.json").read_text())
    assert report["scenario"]["seed"] == 9 and report["scenario"]["duration_s"] == 3600
    assert report["scenario"]["routers"] == {"n": "spray_and_wait"}
    assert not Path("r", "delivery.png").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--router", "nope"], "dtncloud: error: --router: unknown router 'nope'"),
        (["--set", "duration=-1"], "dtncloud: error: tiny.toml: duration: "),
        (["--set", "sed=1"], "unknown key 'sed' at the top level; did you mean 'seed'?"),
        (["--set", "oops"], "dtncloud: error: --set 'oops': expected KEY=VALUE"),
    ],
)
def test_run_errors_are_one_line(tiny: Path, args: list[str], expected: str) -> None:
    result = invoke("sim", "run", tiny.name, "--out", "x", *args)
    assert result.exit_code in (1, 2)
    assert result.stderr.count("\n") == 1, result.stderr
    assert expected in result.stderr


def test_missing_scenario_file(tiny: Path) -> None:
    result = invoke("sim", "run", "absent.toml", "--out", "x")
    assert result.exit_code == 1
    assert result.stderr == "dtncloud: error: absent.toml: no such file or directory\n"


def test_compare(tiny: Path) -> None:
    for seed in (1, 2):
        assert (
            invoke("sim", "run", tiny, "--out", f"s{seed}", "--seed", seed, "--no-plots").exit_code
            == 0
        )
    result = invoke("sim", "compare", "s1", "s2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["run", "router", "seed"]
    assert [line.split()[:3] for line in lines[2:4]] == [
        ["s1", "epidemic", "1"],
        ["s2", "epidemic", "2"],
    ]
    as_json = json.loads(invoke("sim", "compare", "--json", "s1", "s2").stdout)
    assert [run["seed"] for run in as_json["runs"]] == [1, 2]
    missing = invoke("sim", "compare", "s1", "nowhere")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("dtncloud: error: nowhere: no report.json")


def test_sweep_in_two_processes(tiny: Path) -> None:
    result = invoke(
        "sim", "sweep", tiny, "--param", "group.router=epidemic,direct", "--param", "seed=3",
        "--out", "grid", "--jobs", 2, "--no-plots",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    names = ["group.router=epidemic_seed=3", "group.router=direct_seed=3"]
    assert sorted(p.name for p in Path("grid").iterdir()) == sorted(names)
    lines = result.stdout.splitlines()
    assert [line.split()[1] for line in lines[2:4]] == ["epidemic", "direct"]
    assert "sweeping 2 runs" in result.stderr and "[2/2]" in result.stderr
    # Each run is the run that sim run makes with the same settings.
    alone = invoke(
        "sim", "run", tiny, "--out", "alone", "--router", "direct", "--seed", 3, "--no-plots"
    )
    assert alone.exit_code == 0
    assert (
        Path("alone/report.json").read_bytes() == Path("grid", names[1], "report.json").read_bytes()
    )


def test_sweep_refuses_a_bad_value_before_running(tiny: Path) -> None:
    result = invoke("sim", "sweep", tiny, "--param", "group.router=epidemic,bogus", "--out", "g")
    assert result.exit_code == 1
    assert "tiny.toml: [[group]] 1: router: unknown router 'bogus'" in result.stderr
    assert not Path("g").exists()


def test_every_simulation_is_listed_and_commented() -> None:
    assert len(SCENARIOS) >= 5
    readme = (SIMULATIONS / "README.md").read_text()
    for path in SCENARIOS:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# ") and len(first) > 30, path.name
        assert path.name in readme, path.name


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_every_simulation_runs(path: Path) -> None:
    spec = load_scenario(path, [("duration", "3h")])
    result = run_scenario(spec)
    assert result.report["scenario"]["name"] == spec.name
    assert result.report["created"] > 0
    assert result.report["sim_time_s"] == 3 * 3600
