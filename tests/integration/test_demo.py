"""``dtncloud demo``: three nodes in one process, readings through a relay whose link comes
and goes, run as a user runs it."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtncloud.store.sqlite import SqliteStore
from tests.integration.dtnd_helpers import dtncloud, environment, one_line, short_tempdir

pytestmark = pytest.mark.timeout(180)

QUICK = ["demo", "--readings", "3", "--interval", "0.1", "--link-up", "0.5", "--link-down", "0.3"]
# seq, sent, arrived, latency, then the journey. A node's "(held ...)" is missing when the
# link broke after the next node had the reading but before it acknowledged the transfer.
_HELD = r"(?: \(held \d+\.\ds\))?"
ROW = re.compile(
    r"^\s+(\d+)\s+\d+\.\ds\s+\d+\.\ds\s+\d+\.\ds\s+"
    rf"sensor \d+\.\ds{_HELD} -> relay \d+\.\ds{_HELD} -> cloud \d+\.\ds$"
)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    # The nodes' API sockets go under it: Unix socket paths are limited to about 107 bytes.
    with short_tempdir("dtndemo-") as path:
        yield path


def check_run(stdout: str) -> None:
    arrived = re.findall(r"^\[\s*\d+\.\ds\] cloud: reading (\d+) arrived", stdout, flags=re.M)
    assert sorted(arrived) == ["1", "2", "3"], stdout
    rows = [match.group(1) for line in stdout.splitlines() if (match := ROW.match(line))]
    assert rows == ["1", "2", "3"], stdout
    assert "(not arrived)" not in stdout
    assert stdout.rstrip().endswith("every node stopped cleanly")


def test_the_demo_runs_and_leaves_no_files(short_tmp: Path) -> None:
    result = dtncloud(*QUICK, env=environment(TMPDIR=str(short_tmp)))
    assert result.returncode == 0, result.stdout + result.stderr
    check_run(result.stdout)
    match = re.search(
        r"^Nodes' configurations, stores and sockets are in (\S+)$", result.stdout, re.M
    )
    assert match, result.stdout
    assert Path(match.group(1)).parent == short_tmp
    assert list(short_tmp.iterdir()) == []


def test_keep_leaves_the_three_node_directories(short_tmp: Path) -> None:
    keep = short_tmp / "keep"
    result = dtncloud(*QUICK, "--keep", str(keep), env=environment(TMPDIR=str(short_tmp)))
    assert result.returncode == 0, result.stdout + result.stderr
    check_run(result.stdout)
    assert sorted(p.name for p in short_tmp.iterdir()) == ["keep"]
    assert sorted(p.name for p in keep.iterdir()) == ["cloud", "relay", "sensor"]

    async def stored(directory: Path) -> int:
        async with SqliteStore(directory) as store:
            return (await store.usage()).bundles

    for name in ("sensor", "relay", "cloud"):
        node = keep / name
        assert f'node_id = "dtn://{name}/"' in (node / "dtncloud.toml").read_text()
        assert (node / "store").is_dir()
        assert not (node / "api.sock").exists()  # removed when the node stopped
        # Every reading was forwarded on, and the cloud's application acknowledged each.
        assert asyncio.run(stored(node / "store")) == 0

    again = dtncloud(*QUICK, "--keep", str(keep))
    assert again.returncode == 1
    assert one_line(again.stderr) == f"dtncloud: error: demo: {keep} is not empty"
