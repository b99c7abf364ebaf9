"""Report files: what is written, byte-identical every time, and the comparison of runs."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from dtncloud.errors import ConfigError
from dtncloud.sim.reports import compare, load_report, report_json, write_reports


def fake_report(delivered: int = 2, router: str = "epidemic", seed: int = 1) -> dict[str, Any]:
    return {
        "created": 3,
        "delivered": delivered,
        "delivery_prob": delivered / 3,
        "latency_avg": 12.5,
        "latency_med": 10.0,
        "latency_p95": 15.0,
        "overhead_ratio": math.nan if not delivered else 1.5,
        "hopcount_avg": 2.0,
        "hopcount_med": 2,
        "dropped": 1,
        "rtt_avg": None,
        "drops_by_reason": {"lifetime_expired": 1},
        "per_node": {
            "dtn://b/": {"created": 0, "delivered": 2, "peak_bytes": 10},
            "dtn://a/": {"created": 3, "delivered": 0, "peak_bytes": 300},
        },
        "occupancy": {
            "t_s": [0.0, 60.0, 120.0],
            "total_bytes": [0, 300, 10],
            "mean_bytes": [0.0, 150.0, 5.0],
            "max_bytes": [0, 300, 10],
            "total_bundles": [0, 3, 1],
        },
        "scenario": {"name": "fake", "seed": seed, "start_s": 0.0, "routers": {"all": router}},
    }


MESSAGES = [
    {"message_id": "M1", "created_s": 1.0, "delivered_s": 11.0, "latency_s": 10.0, "hops": 2},
    {"message_id": "M2", "created_s": 2.0, "delivered_s": 17.0, "latency_s": 15.0, "hops": 2},
    {"message_id": "M3", "created_s": 3.0, "delivered_s": None, "latency_s": None, "hops": None},
]

EXPECTED_FILES = {
    "report.json",
    "report.csv",
    "nodes.csv",
    "occupancy.csv",
    "messages.csv",
    "delivery.png",
    "latency_cdf.png",
    "occupancy.png",
}


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="") as handle:
        return list(csv.reader(handle))


def test_files_written(tmp_path: Path) -> None:
    written = write_reports(tmp_path / "run", fake_report(), messages=MESSAGES)
    assert {p.name for p in written} == EXPECTED_FILES
    assert {p.name for p in (tmp_path / "run").iterdir()} == EXPECTED_FILES  # no temporaries
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["overhead_ratio"] == 1.5 and report["scenario"]["name"] == "fake"
    summary = dict(read_csv(tmp_path / "run" / "report.csv")[1:])
    assert summary["delivered"] == "2"
    assert summary["drops_by_reason.lifetime_expired"] == "1"
    assert summary["scenario.routers.all"] == "epidemic"
    assert summary["rtt_avg"] == ""
    assert "per_node" not in "".join(summary) and "occupancy.t_s" not in summary
    nodes = read_csv(tmp_path / "run" / "nodes.csv")
    assert nodes == [
        ["node", "created", "delivered", "peak_bytes"],
        ["dtn://a/", "3", "0", "300"],
        ["dtn://b/", "0", "2", "10"],
    ]
    occupancy = read_csv(tmp_path / "run" / "occupancy.csv")
    assert occupancy[0] == ["t_s", "max_bytes", "mean_bytes", "total_bundles", "total_bytes"]
    assert occupancy[2] == ["60.0", "300", "150.0", "3", "300"]
    messages = read_csv(tmp_path / "run" / "messages.csv")
    assert messages[3] == ["M3", "3.0", "", "", ""]
    for name in ("delivery.png", "latency_cdf.png", "occupancy.png"):
        assert (tmp_path / "run" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_byte_identical_across_writes(tmp_path: Path) -> None:
    write_reports(tmp_path / "one", fake_report(), messages=MESSAGES)
    write_reports(tmp_path / "two", fake_report(), messages=MESSAGES)
    for name in EXPECTED_FILES:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), (
            name
        )


def test_no_plots_and_no_messages(tmp_path: Path) -> None:
    written = write_reports(tmp_path, fake_report(delivered=0), plots=False)
    assert {p.name for p in written} == {"report.json", "report.csv", "nodes.csv", "occupancy.csv"}


def test_non_finite_numbers_become_null() -> None:
    data = json.loads(report_json({"a": math.inf, "b": [math.nan, 1.0], "c": {"d": -math.inf}}))
    assert data == {"a": None, "b": [None, 1.0], "c": {"d": None}}
    assert report_json({"b": 1, "a": 2}) == b'{\n  "a": 2,\n  "b": 1\n}\n'


def test_plots_of_an_empty_run(tmp_path: Path) -> None:
    report = fake_report(delivered=0)
    report["occupancy"] = {}
    write_reports(tmp_path, report, messages=[])
    assert (tmp_path / "latency_cdf.png").stat().st_size > 0


def test_compare_table_and_json(tmp_path: Path) -> None:
    write_reports(tmp_path / "epi", fake_report(2, "epidemic", 1), plots=False)
    write_reports(tmp_path / "snw", fake_report(0, "spray_and_wait", 2), plots=False)
    comparison = compare([tmp_path / "epi", tmp_path / "snw"])
    rows = comparison.rows()
    assert [(r["routers"], r["seed"], r["delivered"]) for r in rows] == [
        ("epidemic", 1, 2),
        ("spray_and_wait", 2, 0),
    ]
    lines = comparison.table().splitlines()
    assert lines[0].split()[:5] == ["run", "router", "seed", "created", "delivered"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split()[1:6] == ["epidemic", "1", "3", "2", "0.667"]
    assert lines[3].split()[-4] == "-"  # an overhead ratio that was NaN
    assert lines[4] == f"drops in {tmp_path / 'epi'}: lifetime_expired 1"
    data = json.loads(comparison.as_json())
    assert data["runs"][1]["overhead_ratio"] is None
    assert data["runs"][0]["drops_by_reason"] == {"lifetime_expired": 1}


def test_compare_a_directory_without_a_report(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no report.json \(not the output of sim run\?\)"):
        load_report(tmp_path)
    (tmp_path / "report.json").write_text("[1]")
    with pytest.raises(ConfigError, match="not a report"):
        load_report(tmp_path)
    (tmp_path / "report.json").write_text("{")
    with pytest.raises(ConfigError, match="cannot read the report"):
        load_report(tmp_path)
