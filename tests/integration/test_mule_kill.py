"""A mule sync cut short by SIGKILL of the exporting ``dtnd`` loses nothing, and a second
sync completes it (docs/mule.md, "When things go wrong": "The node stops during a sync").

Node A is a real ``dtnd`` with a mule convergence layer, a ``[[peer]]`` B reached through the
mule and a static route to it. It holds a few hundred bundles for B; ``dtncloud mule sync``
starts the export and A is killed with SIGKILL while bundle files are still appearing on the
stick. What the docs promise, checked here:

- a bundle is released by A only once a synced manifest lists it: every bundle A accepted is
  afterwards either listed in A's manifest on the stick or still in A's store (or both: the
  kill may come between the manifest write and the store delete);
- files left by the cut-short write (temporary files, files not yet listed) are removed by A
  at its next sync, which writes the rest; without custody A then holds nothing;
- B, trusting A's key, takes every bundle from the stick and delivers each exactly once,
  intact, and its delivery records retire A's copies from the stick.

Nothing sleeps for timing: every wait polls a condition with a deadline.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from dtncloud.client import Client
from tests.integration.dtnd_helpers import (
    CLI_TIMEOUT,
    DTNCLOUD,
    REPO,
    Dtnd,
    call_api,
    environment,
    poll,
    short_tempdir,
)

pytestmark = pytest.mark.timeout(180)

T = TypeVar("T")

#: Enough bundles that the export (about a millisecond a file on a local disk) takes a few
#: hundred milliseconds: the kill comes once ``KILL_AT`` files are there, past the first
#: manifest rewrite (bundles are written in groups of up to 64 per rewrite).
COUNT = 300
SIZE = 32 * 1024
KILL_AT = 80
#: Generous: the suite runs on two loaded cores.
TIMEOUT = 60.0


@pytest.fixture
def base() -> Iterator[Path]:
    # Node directories hold API sockets: a short path, which tmp_path may not be.
    with short_tempdir("dtnmule-") as path:
        yield path


def mule_config(directory: Path, node_id: str, body: str) -> Path:
    """A node with only a mule convergence layer (no network at all) and ``body`` appended."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "dtncloud.toml"
    path.write_text(f'node_id = "{node_id}"\ndata_dir = "."\n\n{body}', encoding="utf-8")
    return path


A_CONFIG = """\
[[cla]]
type = "mule"
settle = "500ms"

[[peer]]
node_id = "dtn://b/"
cla = "mule"

[routing]
router = "static"

[[routing.route]]
destination = "dtn://b/*"
via = "dtn://b/"
"""

B_CONFIG = """\
[[cla]]
type = "mule"
trusted_dir = "mule-trusted"
settle = "500ms"

[[peer]]
node_id = "dtn://a/"
cla = "mule"

[routing]
router = "static"

[[routing.route]]
destination = "dtn://a/*"
via = "dtn://a/"
"""


def payload(i: int) -> bytes:
    """``SIZE`` bytes, different for every ``i``, that say which they are."""
    head = f"bundle {i:04d} ".encode()
    seed = hashlib.sha256(head).digest()
    body = (seed * (SIZE // len(seed) + 1))[: SIZE - len(head)]
    return head + body


def bundle_files(directory: Path) -> list[Path]:
    try:
        return [p for p in directory.iterdir() if p.name.endswith(".bundle")]
    except FileNotFoundError:
        return []


def manifest_ids(directory: Path) -> dict[str, str]:
    """Bundle file name -> bundle ID, as listed in the writer's manifest (docs/mule.md: the
    second line is the JSON body); empty when there is no manifest yet."""
    try:
        text = (directory / "manifest").read_text("utf-8")
    except FileNotFoundError:
        return {}
    body = json.loads(text.splitlines()[1])
    return {name: entry["id"] for name, entry in body["bundles"].items()}


def tmp_files(stick: Path) -> list[str]:
    return sorted(str(p.relative_to(stick)) for p in stick.rglob(".tmp-*"))


def poll_fast(condition: Callable[[], T], what: str, timeout: float) -> T:
    """:func:`poll`, looking every couple of milliseconds (the export is quick)."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.002)
    return result


def held(daemon: Dtnd) -> set[str]:
    items = call_api(daemon.api, lambda c: c.list_bundles())
    return {item["bundle_id"] for item in items}


def test_a_sync_killed_midway_loses_nothing_and_a_second_sync_completes_it(
    base: Path,
) -> None:
    a_config = mule_config(base / "a", "dtn://a/", A_CONFIG)
    b_config = mule_config(base / "b", "dtn://b/", B_CONFIG)
    stick = base / "stick"
    stick.mkdir()  # docs/mule.md: made once by the operator, never by dtncloud
    payloads = {i: payload(i) for i in range(COUNT)}

    with Dtnd.start(a_config) as a:

        async def send_all(client: Client) -> list[str]:
            return [await client.send("dtn://b/inbox", data) for data in payloads.values()]

        sent = call_api(a.api, send_all, TIMEOUT)
        assert len(set(sent)) == COUNT

        # dtnd made its mule key on first use; the public key line is beside it.
        a_key_line = (base / "a" / "mule.key.pub").read_text("ascii")
        assert a_key_line.startswith("ed25519 ") and "dtn://a/" in a_key_line

        sync = subprocess.Popen(
            [*DTNCLOUD, "mule", "sync", str(stick), "--api", str(a.api)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=environment(),
        )
        try:
            a_dir: Path | None = None

            def midway() -> int:
                nonlocal a_dir
                nodes = stick / "nodes"
                if a_dir is None:
                    dirs = list(nodes.iterdir()) if nodes.is_dir() else []
                    if not dirs:
                        return 0
                    [a_dir] = dirs
                count = len(bundle_files(a_dir))
                if count >= COUNT:
                    pytest.fail("the export finished before A could be killed: more bundles?")
                return count if count >= KILL_AT else 0

            at_kill = poll_fast(midway, "the export to be under way", TIMEOUT)
            a.kill()
            out, err = sync.communicate(timeout=CLI_TIMEOUT)
        finally:
            if sync.poll() is None:
                sync.kill()
                sync.wait(CLI_TIMEOUT)
        assert a_dir is not None
        # The command lost the node: it says so and fails (exit status 1).
        assert sync.returncode == 1, (out, err)
        assert "closed the connection" in err, err

    on_stick = {p.name for p in bundle_files(a_dir)}
    listed = manifest_ids(a_dir)
    assert KILL_AT <= at_kill <= len(on_stick) < COUNT  # cut short midway
    assert set(listed) <= on_stick  # a listed file is always there, and complete
    assert set(listed.values()) <= set(sent)

    with Dtnd.start(a_config) as a:
        # Nothing lost: what no manifest lists is still at A.
        kept = held(a)
        assert kept <= set(sent)
        assert set(sent) - set(listed.values()) <= kept

        report = call_api(a.api, lambda c: c.mule_sync(stick), TIMEOUT)
        assert report["phase"] == "done", report
        assert not report["skipped"], report
        assert report["left"] == 0
        # Every bundle A still had went to the stick; those a manifest listed already (A was
        # killed before it let them go) were found there and not written again.
        assert report["exported"] == len(kept), report
        assert report["already"] == len(kept & set(listed.values())), report
        poll(lambda: not held(a), "A to release every bundle (no custody)", TIMEOUT)
        assert a.stop() == 0

    files = {p.name for p in bundle_files(a_dir)}
    listed = manifest_ids(a_dir)
    assert files == set(listed), "a file on the stick that the manifest does not list"
    assert sorted(listed.values()) == sorted(sent)
    assert tmp_files(stick) == []

    # B trusts A's key: an operator copied A's public key line into B's trusted directory.
    trusted = base / "b" / "mule-trusted"
    trusted.mkdir()
    shutil.copy(base / "a" / "mule.key.pub", trusted / "site-a.pub")

    with Dtnd.start(b_config) as b:

        async def sync_and_receive(client: Client) -> tuple[dict[str, Any], list[Any]]:
            await client.register("inbox", mode="passive")
            report = await client.mule_sync(stick)
            got = await client.receive("inbox", count=COUNT, timeout=TIMEOUT)
            for bundle in got:
                await bundle.ack()
            return report, got

        report, got = call_api(b.api, sync_and_receive, 2 * TIMEOUT)
        assert report["phase"] == "done", report
        assert not report["skipped"], report
        assert report["imported"] == COUNT

        received = [(bundle.bundle_id, bundle.payload) for bundle in got]
        assert len(received) == COUNT
        assert sorted(bundle_id for bundle_id, _ in received) == sorted(sent)  # once each
        by_id = dict(zip(sent, payloads.values(), strict=True))
        assert all(data == by_id[bundle_id] for bundle_id, data in received)

        # Nothing more comes, even from a second sync of the same stick.
        again = call_api(b.api, lambda c: c.mule_sync(stick), TIMEOUT)
        assert again["phase"] == "done" and again["imported"] == 0, again

        poll(lambda: not held(b), "B's store to be empty (every delivery acknowledged)")
        counters = call_api(b.api, lambda c: c.status())["bundles"]
        assert (counters["delivered"], counters["duplicates"]) == (COUNT, 0), counters
        # B's delivery records retired A's copies from the stick.
        assert bundle_files(a_dir) == []
        assert tmp_files(stick) == []
        assert b.stop() == 0
