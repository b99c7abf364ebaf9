"""``dtncloud udp listen`` and ``dtncloud udp send`` on loopback.

The listener runs in a child process (it blocks until --count bundles have arrived); the
sender runs in this process through click's test runner.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from dtncloud.bpv7 import Bundle, encode_bundle
from dtncloud.cli import cli as main_cli
from dtncloud.cli._output import DtnGroup
from dtncloud.cli._received import bundle_file_name
from dtncloud.cli.udp import udp

pytestmark = pytest.mark.timeout(60)

# Until the lead registers the group in dtncloud.cli, run it under a stand-in top level that
# reports errors the same way.
if "udp" in main_cli.commands:
    CLI: click.Group = main_cli
    CHILD = "from dtncloud.cli import main; main()"
else:

    @click.group(cls=DtnGroup)
    def CLI() -> None:
        """Test stand-in for the dtncloud command."""

    CLI.add_command(udp)
    CHILD = (
        "from dtncloud.cli._output import DtnGroup; "
        "from dtncloud.cli.udp import udp; "
        "top = DtnGroup('dtncloud'); top.add_command(udp); "
        "top.main(prog_name='dtncloud')"
    )


def make_bundle(path: Path, text: str, sequence: int = 0, *, pad: int = 0) -> str:
    bundle = Bundle.create(
        source="dtn://sensor/temp",
        destination="dtn://cloud/in",
        payload=text.encode() + b"." * pad,
        creation_time=767_880_000_000,
        sequence=sequence,
    )
    path.write_bytes(encode_bundle(bundle))
    return str(bundle.id)


def invoke(*args: object) -> Result:
    return CliRunner().invoke(CLI, [str(arg) for arg in args])


def one_error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("dtncloud: error: "), lines[0]
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    """``udp listen --count 2`` in a child process; yields it, its port and its out dir."""
    out = tmp_path / "received"
    command = [sys.executable, "-c", CHILD, "udp", "listen", "--host", "127.0.0.1"]
    command += ["--port", "0", "--out", str(out), "--count", "2"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout is not None
        first = child.stdout.readline()
        assert first.startswith("listening on 127.0.0.1:"), first + (
            child.stderr.read() if child.stderr else ""
        )
        port = int(first.split(":")[1].split()[0])
        yield child, port, out
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)


def test_send_two_bundles_to_a_listener(
    listener: tuple[subprocess.Popen[str], int, Path], tmp_path: Path
) -> None:
    child, port, out = listener
    first, second = tmp_path / "one.bundle", tmp_path / "two.bundle"
    ids = [make_bundle(first, "first", 1), make_bundle(second, "second", 2)]
    # Junk first: the listener ignores it, counts it, and still stops after two bundles.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        raw.sendto(b"not a bundle", ("127.0.0.1", port))

    result = invoke("udp", "send", f"127.0.0.1:{port}", first, second)

    assert result.exit_code == 0, result.output
    sent = result.stdout.splitlines()
    assert len(sent) == 2
    assert sent[0].startswith(f"sent {first}: {first.stat().st_size} bytes, bundle {ids[0]} to ")
    stdout, stderr = child.communicate(timeout=20)
    assert child.returncode == 0, stderr
    lines = stdout.splitlines()
    assert len(lines) == 3
    for line, bundle_id in zip(lines, ids, strict=False):
        assert line.startswith(f"received bundle {bundle_id}: ")
        assert f"wrote {out / bundle_file_name(bundle_id)}" in line
    assert lines[2] == "ignored 1 datagram that held no bundle"
    written = sorted(path.name for path in out.iterdir())
    assert written == sorted(bundle_file_name(bundle_id) for bundle_id in ids)
    assert (out / bundle_file_name(ids[0])).read_bytes() == first.read_bytes()
    assert (out / bundle_file_name(ids[1])).read_bytes() == second.read_bytes()


def test_too_large_bundle_is_refused_and_nothing_is_sent(tmp_path: Path) -> None:
    small, big = tmp_path / "small.bundle", tmp_path / "big.bundle"
    make_bundle(small, "small")
    make_bundle(big, "big", pad=2000)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        sink.setblocking(False)
        port = sink.getsockname()[1]
        result = invoke("udp", "send", f"127.0.0.1:{port}", small, big, "--max-bundle-size", 1000)
        assert result.exit_code == 1
        line = one_error_line(result)
        assert str(big) in line
        assert "fragment" in line
        with pytest.raises(BlockingIOError):
            sink.recv(65_536)  # the small one was not sent either
    assert result.stdout == ""


def test_a_file_that_is_not_a_bundle_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_text("hello")
    result = invoke("udp", "send", "127.0.0.1:4556", junk)
    assert result.exit_code == 1
    assert (
        one_error_line(result)
        == f"dtncloud: error: {junk}: not a bundle: first octet 0x68 starts no bundle"
    )


def test_missing_file_is_one_error_line(tmp_path: Path) -> None:
    result = invoke("udp", "send", "127.0.0.1:4556", tmp_path / "absent.bundle")
    assert result.exit_code == 1
    assert "absent.bundle" in one_error_line(result)


def test_bad_address_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "b.bundle"
    make_bundle(path, "x")
    result = invoke("udp", "send", "127.0.0.1:port", path)
    assert result.exit_code == 2
    assert "HOST:PORT" in one_error_line(result)


def test_rate_option(tmp_path: Path) -> None:
    path = tmp_path / "b.bundle"
    make_bundle(path, "x")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        port = sink.getsockname()[1]
        for rate in ("0", "unlimited", "64k"):
            result = invoke("udp", "send", f"127.0.0.1:{port}", path, "--rate", rate)
            assert result.exit_code == 0, result.output
            assert sink.recv(65_536) == path.read_bytes()
    result = invoke("udp", "send", f"127.0.0.1:{port}", path, "--rate", "fast")
    assert result.exit_code == 2


def test_listen_into_a_file_instead_of_a_directory_fails(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    result = invoke("udp", "listen", "--port", 0, "--out", not_a_dir, "--count", 1)
    assert result.exit_code == 1
    assert str(not_a_dir) in one_error_line(result)


@pytest.mark.parametrize(
    ("bundle_id", "name"),
    [
        ("ipn:10.0@755000000000.0", "ipn%3A10.0@755000000000.0.bundle"),
        ("dtn://sensor/@767880000000.3", "dtn%3A%2F%2Fsensor%2F@767880000000.3.bundle"),
        ("dtn://a/@1.0/253+252", "dtn%3A%2F%2Fa%2F@1.0%2F253+252.bundle"),
        ("dtn://../@1.0", "dtn%3A%2F%2F..%2F@1.0.bundle"),
    ],
)
def test_bundle_file_names_are_safe_and_distinct(bundle_id: str, name: str) -> None:
    assert bundle_file_name(bundle_id) == name
    assert "/" not in name and not name.startswith(".")


def test_long_bundle_ids_are_shortened_but_stay_distinct() -> None:
    one, two = "dtn://" + "a" * 300 + "/@1.0", "dtn://" + "a" * 300 + "/@2.0"
    assert len(bundle_file_name(one)) <= 255
    assert bundle_file_name(one) != bundle_file_name(two)
