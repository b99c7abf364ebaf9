"""``dtncloud sim replay``: a scenario small enough to work out by hand, determinism, and
one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from dtncloud.cli import cli
from tests.sim.contact_traces import random_trace

CONTACTS = """\
10 CONN 0 1 up
20 CONN 0 1 down
30 CONN 1 2 up
40 CONN 1 2 down
"""
MESSAGES = """\
5 C M1 0 2 500
15.5 C M2 2 0 500 100
"""


def _write(tmp_path: Path, contacts: str = CONTACTS, messages: str = MESSAGES) -> list[str]:
    (tmp_path / "contacts.txt").write_text(contacts)
    (tmp_path / "messages.txt").write_text(messages)
    return [
        "sim",
        "replay",
        "--contacts",
        str(tmp_path / "contacts.txt"),
        "--messages",
        str(tmp_path / "messages.txt"),
    ]


def test_a_scenario_worked_out_by_hand(tmp_path: Path) -> None:
    args = _write(tmp_path)
    result = CliRunner().invoke(cli, [*args, "--router", "epidemic", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    # M1: 0 -> 1 at 10 s, 1 -> 2 at 30 s (2 hops, 25 s). M2 (at 2 from 15.5 s) reaches 1 at
    # 30 s and no further. Relays: three; node 1 lets its M1 go once 2 has it (removed,
    # after 20 s in its buffer).
    expected: dict[str, object] = {
        "created": 2,
        "started": 3,
        "relayed": 3,
        "aborted": 0,
        "dropped": 0,
        "removed": 1,
        "delivered": 1,
        "delivery_prob": 0.5,
        "response_prob": 0.0,
        "overhead_ratio": 2.0,
        "latency_avg": 25.0,
        "latency_med": 25.0,
        "latency_p95": 25.0,
        "hopcount_avg": 2.0,
        "hopcount_med": 2,
        "buffertime_avg": 20.0,
        "rtt_avg": None,
        "drops_by_reason": {},
        "nodes": 3,
        "contacts": 2,
        "sim_time_s": 40.0,
    }
    assert {key: report[key] for key in expected} == expected
    relayed = {node: counts["relayed"] for node, counts in report["per_node"].items()}
    assert relayed == {"dtn://n0/": 1, "dtn://n1/": 1, "dtn://n2/": 1}
    assert "delivered 1 of 2 (50.0%)" in result.output
    assert f"wrote {tmp_path / 'o' / 'report.json'}" in result.output


def test_spray_and_wait_copies(tmp_path: Path) -> None:
    args = _write(tmp_path)
    out = tmp_path / "o"
    result = CliRunner().invoke(
        cli, [*args, "--router", "spray_and_wait", "--copies", "1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["delivered"] == 0  # one copy: it waits for a contact with its destination
    assert report["relayed"] == 0


def test_router_settings(tmp_path: Path) -> None:
    args = _write(tmp_path)
    out = tmp_path / "o"
    result = CliRunner().invoke(
        cli, [*args, "--router", "spray_and_wait", "--param", "copies=1", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "report.json").read_text())["relayed"] == 0  # as --copies 1
    result = CliRunner().invoke(
        cli, [*args, "--router", "prophet", "--param", "bta=0.2", "--out", str(out)]
    )
    assert result.exit_code == 1
    assert "bta" in result.output and "beta" in result.output  # did you mean
    assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(
        cli, [*args, "--router", "prophet", "--param", "beta", "--out", str(out)]
    )
    assert result.exit_code == 2
    assert "--param 'beta': expected KEY=VALUE" in result.output


def test_same_trace_and_seed_give_the_same_bytes(tmp_path: Path) -> None:
    _, contacts, messages = random_trace(7, nodes=15, contacts=80, messages=30)
    contact_lines = []
    for c in contacts:
        a, b = c.a[1:], c.b[1:]
        contact_lines.append((c.start_ms, f"{c.start_ms / 1000} CONN {a} {b} up"))
        contact_lines.append((c.end_ms, f"{c.end_ms / 1000} CONN {a} {b} down"))
    message_lines = [
        f"{m.at_ms / 1000} C M{i} {m.source[1:]} {m.destination[1:]} {300 + 50 * i}"
        for i, m in enumerate(messages)
    ]
    args = _write(
        tmp_path,
        "\n".join(line for _, line in sorted(contact_lines)) + "\n",
        "\n".join(message_lines) + "\n",
    )
    runs = []
    for run, hash_seed in enumerate(("1", "2")):
        out = tmp_path / f"run{run}"
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-m", "dtncloud", *args, "--router", "epidemic", "--rate", "20000",
             "--seed", "5", "--out", str(out)],
            env=env, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        runs.append((out / "report.json").read_bytes())
    assert runs[0] == runs[1]
    report = json.loads(runs[0])
    assert report["delivered"] > 0 and report["relayed"] > report["delivered"]
    assert list(report) == sorted(report)


def test_errors_are_one_line(tmp_path: Path) -> None:
    args = _write(tmp_path)
    runner = CliRunner()
    out = str(tmp_path / "o")

    result = runner.invoke(cli, [*args, "--router", "nope", "--out", out])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "dtncloud: error: --router: unknown router 'nope'; known routers: cgr, direct, "
        "epidemic, first_contact, prophet, spray_and_wait, static"
    ]

    bad = _write(tmp_path, CONTACTS + "50 CONN 0 1 sideways\n")
    result = runner.invoke(cli, [*bad, "--router", "epidemic", "--out", out])
    assert result.exit_code == 1
    contacts = tmp_path / "contacts.txt"
    assert result.output.strip() == (
        f"dtncloud: error: {contacts}:5: connection state 'sideways' is not up or down"
    )

    args = _write(tmp_path)
    result = runner.invoke(cli, [*args, "--router", "epidemic", "--copies", "2", "--out", out])
    assert result.exit_code == 2
    assert "--copies applies to --router spray_and_wait only" in result.output
