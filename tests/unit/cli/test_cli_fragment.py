"""``dtncloud bundle fragment`` and ``dtncloud bundle reassemble``."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest

from dtncloud.bpv7 import decode_bundle
from tests.unit.cli.helpers import Run, one_error_line, read_bundle

pytest.importorskip("dtncloud.bpv7.fragment")

PAYLOAD = "".join(f"reading {i:03d}; " for i in range(60))


@pytest.fixture
def big(make_bundle: Callable[..., Path]) -> Path:
    return make_bundle("big.bundle", text=PAYLOAD, hop_limit=4)


def test_fragment_into_a_directory_and_reassemble(run: Run, big: Path, tmp_path: Path) -> None:
    result = run("bundle", "fragment", "big.bundle", "--max-size", "200", "--out-dir", "frags")
    assert result.exit_code == 0, result.stderr
    pieces = sorted((tmp_path / "frags").iterdir())
    assert [p.name for p in pieces] == [f"big.bundle.frag{i:04d}" for i in range(len(pieces))]
    assert len(pieces) > 3
    assert len(result.stdout.splitlines()) == len(pieces)
    assert all(p.stat().st_size <= 200 for p in pieces)
    assert all(decode_bundle(p.read_bytes()).primary.is_fragment for p in pieces)
    random.Random(1).shuffle(pieces)
    joined = run("bundle", "reassemble", *pieces, "--out", "whole.bundle")
    assert joined.exit_code == 0, joined.stderr
    assert (tmp_path / "whole.bundle").read_bytes() == big.read_bytes()


def test_fragments_go_next_to_the_file_by_default(run: Run, big: Path, tmp_path: Path) -> None:
    assert run("bundle", "fragment", "big.bundle", "--max-size", "512").exit_code == 0
    assert (tmp_path / "big.bundle.frag0000").exists()
    assert (tmp_path / "big.bundle.frag0001").exists()


def test_reassemble_to_stdout(run: Run, big: Path, tmp_path: Path) -> None:
    run("bundle", "fragment", "big.bundle", "--max-size", "300")
    pieces = sorted(tmp_path.glob("big.bundle.frag*"))
    result = run("bundle", "reassemble", *pieces, "--out", "-")
    assert result.exit_code == 0, result.stderr
    assert result.stdout_bytes == big.read_bytes()


def test_a_bundle_that_fits_is_written_alone(run: Run, big: Path, tmp_path: Path) -> None:
    result = run("bundle", "fragment", "big.bundle", "--max-size", "64k")
    assert result.exit_code == 0
    assert "not fragmented" in result.stdout
    assert (tmp_path / "big.bundle.frag0000").read_bytes() == big.read_bytes()


def test_a_too_small_max_size_writes_nothing(run: Run, big: Path, tmp_path: Path) -> None:
    result = run("bundle", "fragment", "big.bundle", "--max-size", "40", "--out-dir", "frags")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert line.startswith("dtncloud: error: big.bundle: ")
    assert "too small" in line
    assert not list(tmp_path.glob("**/*.frag*"))


def test_must_not_fragment_is_respected(run: Run, make_bundle: Callable[..., Path]) -> None:
    make_bundle("fixed.bundle", text=PAYLOAD, must_not_fragment=True)
    result = run("bundle", "fragment", "fixed.bundle", "--max-size", "200")
    assert result.exit_code == 1
    assert "must-not-fragment" in one_error_line(result)


def test_a_missing_fragment_is_named(run: Run, big: Path, tmp_path: Path) -> None:
    run("bundle", "fragment", "big.bundle", "--max-size", "200")
    pieces = sorted(tmp_path.glob("big.bundle.frag*"))
    result = run("bundle", "reassemble", *(pieces[:1] + pieces[2:]), "--out", "whole.bundle")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert "are missing" in line
    assert not (tmp_path / "whole.bundle").exists()


def test_reassemble_refuses_a_whole_bundle(run: Run, big: Path) -> None:
    result = run("bundle", "reassemble", "big.bundle", "--out", "x.bundle")
    assert result.exit_code == 1
    one_error_line(result)


def test_reassemble_reports_a_corrupt_fragment_by_name(run: Run, big: Path, tmp_path: Path) -> None:
    run("bundle", "fragment", "big.bundle", "--max-size", "200")
    pieces = sorted(tmp_path.glob("big.bundle.frag*"))
    pieces[1].write_bytes(b"\x9f\xff")
    result = run("bundle", "reassemble", *pieces, "--out", "x.bundle")
    assert result.exit_code == 1
    assert one_error_line(result).startswith(f"dtncloud: error: {pieces[1]}: not a valid bundle")


def test_reassemble_needs_out(run: Run, big: Path) -> None:
    result = run("bundle", "reassemble", "big.bundle")
    assert result.exit_code == 2
    assert "--out" in one_error_line(result)


def test_fragmented_bundles_inspect_as_fragments(run: Run, big: Path, tmp_path: Path) -> None:
    run("bundle", "fragment", "big.bundle", "--max-size", "200")
    second = tmp_path / "big.bundle.frag0001"
    result = run("bundle", "inspect", str(second))
    fragment = read_bundle(second)
    assert "flags        0x1 (is-fragment)" in result.stdout
    offset = fragment.primary.fragment_offset
    assert f"(offset {offset}, total ADU length {len(PAYLOAD)})" in result.stdout
