"""``dtncloud tour`` runs to completion, leaves inspectable files, and fails loudly."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.unit.cli.helpers import Run, one_error_line

pytest.importorskip("dtncloud.bpsec")
pytest.importorskip("dtncloud.bpv7.fragment")


def test_tour_runs_to_completion(run: Run, tmp_path: Path) -> None:
    result = run("tour", "--out-dir", "out")
    assert result.exit_code == 0, result.output
    text = result.stdout
    for step in (
        "build",
        "encode",
        "sign",
        "encrypt",
        "inspect",
        "fragment",
        "shuffle",
        "tamper check",
        "decrypt",
        "verify",
        "deliver",
    ):
        assert re.search(rf"^\s*\d+\. {step}", text, re.MULTILINE), step
    assert "never for real traffic" in text
    assert "payload intact" in text
    assert "identical to the encrypted bundle" in text
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files[:3] == ["01-plain.bundle", "02-signed.bundle", "03-encrypted.bundle"]
    assert "06-decrypted.bundle" in files
    fragments = [name for name in files if name.startswith("04-fragment-")]
    assert len(fragments) > 2
    assert all((tmp_path / "out" / name).stat().st_size <= 340 for name in fragments)
    # Every file it leaves is a bundle that inspect reads.
    inspected = run("bundle", "inspect", "--json", *sorted((tmp_path / "out").iterdir()))
    assert inspected.exit_code == 0, inspected.stderr
    assert len(inspected.stdout.splitlines()) == len(files)


def test_the_commands_it_suggests_work(run: Run, tmp_path: Path) -> None:
    result = run("tour", "--out-dir", "out")
    suggestions = [
        line.split()[1:] for line in result.stdout.splitlines() if line.startswith("  dtncloud ")
    ]
    assert len(suggestions) == 3
    for args in suggestions:
        follow = run(*args)
        assert follow.exit_code == 0, (args, follow.stderr)


def test_tour_needs_no_arguments(run: Run) -> None:
    result = run("tour")
    assert result.exit_code == 0, result.output
    match = re.search(r"^Bundle files go to (.+)$", result.stdout, re.MULTILINE)
    assert match is not None
    directory = Path(match[1])
    try:
        assert (directory / "03-encrypted.bundle").exists()
    finally:
        shutil.rmtree(directory)


def test_a_failing_step_ends_the_demo_with_status_1(run: Run) -> None:
    result = run("tour", "--out-dir", "out", "--frame-size", "150")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert line.startswith("dtncloud: error: tour: fragment failed: ")
    assert "too small" in line


def test_an_unusable_out_dir_is_one_line(run: Run, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    result = run("tour", "--out-dir", "file/sub")
    assert result.exit_code == 1
    one_error_line(result)
