"""``dtncloud tcpcl listen`` and ``dtncloud tcpcl send`` as users run them: real processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from dtncloud.bpv7 import Bundle, encode_bundle
from dtncloud.cla.certs import make_ca, make_node_certificate, write_pem_files

pytestmark = pytest.mark.timeout(120)

DTNCLOUD = [sys.executable, "-m", "dtncloud"]


def make_bundles(directory: Path, sizes: list[int]) -> list[Path]:
    paths = []
    for index, size in enumerate(sizes):
        bundle = Bundle.create(
            source="ipn:1.1", destination="ipn:2.1", payload=os.urandom(size), creation_time=5,
            sequence=index,
        )  # fmt: skip
        path = directory / f"b{index}.bundle"
        path.write_bytes(encode_bundle(bundle))
        paths.append(path)
    return paths


@contextmanager
def listening(*arguments: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    process = subprocess.Popen(
        [*DTNCLOUD, "tcpcl", "listen", "--host", "127.0.0.1", "--port", "0", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.search(r"listening on \S+:(\d+)", line)
        assert match, f"unexpected first line from listen: {line!r}"
        yield process, int(match.group(1))
    finally:
        if process.poll() is None:
            process.terminate()
        process.wait(timeout=30)


def send(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DTNCLOUD, "tcpcl", "send", *arguments], capture_output=True, text=True, timeout=60
    )


def test_listen_and_send_move_bundles_and_exit_zero(tmp_path: Path) -> None:
    files = make_bundles(tmp_path, [100, 300_000, 2_000])
    out = tmp_path / "received"
    with listening("--node-id", "ipn:2.0", "--out", str(out), "--count", "3") as (listener, port):
        result = send("--node-id", "ipn:1.0", f"127.0.0.1:{port}", *map(str, files))
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("sent and acknowledged") == 3
        listener.wait(timeout=30)
        assert listener.returncode == 0
    received = sorted(p.read_bytes() for p in out.iterdir() if p.suffix == ".bundle")
    assert received == sorted(p.read_bytes() for p in files)
    assert (out / "ipn%3A1.0@5.1.bundle").read_bytes() == files[1].read_bytes()


def test_send_over_tcpclv3_reaches_the_same_listener(tmp_path: Path) -> None:
    files = make_bundles(tmp_path, [1_000])
    out = tmp_path / "received"
    with listening("--node-id", "ipn:2.0", "--out", str(out), "--count", "1") as (listener, port):
        result = send("--node-id", "ipn:1.0", "--version", "3", f"127.0.0.1:{port}", str(files[0]))
        assert result.returncode == 0, result.stderr
        listener.wait(timeout=30)
    assert [p.read_bytes() for p in out.glob("*.bundle")] == [files[0].read_bytes()]


def test_a_refused_transfer_fails_send_with_one_line(tmp_path: Path) -> None:
    files = make_bundles(tmp_path, [50_000, 100])
    out = tmp_path / "received"
    with listening("--node-id", "ipn:2.0", "--out", str(out), "--transfer-mru", "10000") as (
        _,
        port,
    ):
        result = send("--node-id", "ipn:1.0", f"127.0.0.1:{port}", *map(str, files))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dtncloud: error:")
    assert "b0.bundle" in lines[0] and "fragment" in lines[0]
    assert "b1.bundle: sent and acknowledged" in result.stdout


def test_send_to_nobody_fails_with_one_line(tmp_path: Path) -> None:
    files = make_bundles(tmp_path, [10])
    result = send("--node-id", "ipn:1.0", "--timeout", "5", "127.0.0.1:1", str(files[0]))
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "cannot connect to 127.0.0.1:1" in result.stderr


def test_bad_tls_options_fail_with_one_line(tmp_path: Path) -> None:
    files = make_bundles(tmp_path, [10])
    result = send(
        "--node-id", "ipn:1.0", "--tls-key", str(files[0]), "127.0.0.1:4556", str(files[0])
    )
    assert result.returncode == 1
    assert result.stderr.startswith("dtncloud: error:") and result.stderr.count("\n") == 1


def test_tls_listen_and_send(tmp_path: Path) -> None:
    ca_cert, ca_key = make_ca()
    ca_path, _ = write_pem_files(tmp_path, "ca", ca_cert, ca_key)
    one = write_pem_files(
        tmp_path, "one", *make_node_certificate(ca_cert, ca_key, node_id="ipn:1.0")
    )
    two = write_pem_files(
        tmp_path, "two", *make_node_certificate(ca_cert, ca_key, node_id="ipn:2.0")
    )
    files = make_bundles(tmp_path, [20_000])
    out = tmp_path / "received"
    tls_two = [
        "--tls-cert",
        str(two[0]),
        "--tls-key",
        str(two[1]),
        "--tls-ca",
        str(ca_path),
        "--tls-require",
    ]
    tls_one = ["--tls-cert", str(one[0]), "--tls-key", str(one[1]), "--tls-ca", str(ca_path)]
    with listening("--node-id", "ipn:2.0", "--out", str(out), "--count", "1", *tls_two) as (
        listener,
        port,
    ):
        # A plain sender is turned away by a listener that requires TLS ...
        plain = send("--node-id", "ipn:1.0", f"127.0.0.1:{port}", str(files[0]))
        assert plain.returncode == 1
        # ... and a sender with a certificate for its node ID gets through.
        result = send("--node-id", "ipn:1.0", *tls_one, f"127.0.0.1:{port}", str(files[0]))
        assert result.returncode == 0, result.stderr
        listener.wait(timeout=30)
    assert [p.read_bytes() for p in out.glob("*.bundle")] == [files[0].read_bytes()]


def test_listen_refuses_and_reports_a_bundle_it_cannot_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk: the bundle is refused (the sender keeps it), nothing is counted, and the
    command is told to end with the error."""
    import asyncio
    import errno
    import importlib

    from dtncloud.errors import TransferRefused

    cli_tcpcl = importlib.import_module("dtncloud.cli.tcpcl")  # the package exports the group

    def full_disk(*args: object, **kwargs: object) -> Path:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path))

    monkeypatch.setattr(cli_tcpcl, "save_received", full_disk)
    saver = cli_tcpcl._Saver(tmp_path, 1, asyncio.Event(), quiet=True)
    bundle = make_bundles(tmp_path, [10])[0].read_bytes()
    received = type("Received", (), {"data": bundle, "path": None, "length": len(bundle)})()
    with pytest.raises(TransferRefused) as info:
        asyncio.run(saver.bundle_received(received))  # type: ignore[arg-type]
    assert info.value.reason == 2
    assert saver.received == 0 and saver.done.is_set()
    assert isinstance(saver.error, OSError) and saver.error.errno == errno.ENOSPC
