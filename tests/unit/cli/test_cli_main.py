"""The top-level ``dtncloud`` group: version, help, usage errors, --debug, entry points."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from dtncloud import __version__
from dtncloud.cli import cli, main
from dtncloud.cli._describe import payload_preview
from dtncloud.cli._params import CREATION_TIME, KEY, SIZE
from tests.unit.cli.helpers import CREATED_MS, Run, one_error_line

REPO = Path(__file__).resolve().parents[3]


def test_version(run: Run) -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"dtncloud, version {__version__}"


def test_help_lists_the_commands(run: Run) -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "bundle" in result.stdout and "demo" in result.stdout
    sub = run("bundle", "--help")
    for name in (
        "create",
        "inspect",
        "fragment",
        "reassemble",
        "sign",
        "verify",
        "encrypt",
        "decrypt",
    ):
        assert f"  {name} " in sub.stdout


def test_every_command_has_help(run: Run) -> None:
    for name in (
        "create",
        "inspect",
        "fragment",
        "reassemble",
        "sign",
        "verify",
        "encrypt",
        "decrypt",
    ):
        result = run("bundle", name, "--help")
        assert result.exit_code == 0, name
        assert f"Usage: dtncloud bundle {name}" in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["frobnicate"], "dtncloud: error: no such command 'frobnicate'"),
        (["bundle", "create", "--dest", "ipn:1.1"], "missing option '--source'"),
        (["bundle", "inspect"], "missing argument 'FILE...'"),
        (["bundle", "inspect", "--colour", "x"], "no such option"),
    ],
)
def test_usage_errors_are_one_line_with_status_2(run: Run, args: list[str], expected: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert expected in line
    assert "--help" in line


def test_debug_shows_the_exception(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    quiet = runner.invoke(cli, ["bundle", "inspect", "nope"])
    assert quiet.exit_code == 1
    assert isinstance(quiet.exception, SystemExit)
    loud = runner.invoke(cli, ["--debug", "bundle", "inspect", "nope"])
    assert isinstance(loud.exception, FileNotFoundError)


def test_main_exits_with_the_command_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["bundle", "inspect", "nope"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == "dtncloud: error: nope: no such file or directory\n"


@pytest.mark.parametrize("module", ["dtncloud", "dtncloud.cli"])
def test_python_dash_m(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, "--version"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert __version__ in result.stdout


def test_a_real_pipe_from_create_to_inspect(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "dtncloud", "bundle"]
    created = subprocess.run(
        [*command, "create", "--source", "ipn:1.1", "--dest", "ipn:2.1", "--text", "piped"],
        capture_output=True,
        cwd=REPO,
        check=True,
    )
    shown = subprocess.run(
        [*command, "inspect", "-"],
        input=created.stdout,
        capture_output=True,
        cwd=REPO,
        check=True,
    )
    assert b"preview 'piped'" in shown.stdout


# -- option types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"), [("200", 200), ("64k", 65536), ("1M", 1 << 20), ("2MiB", 2 << 20)]
)
def test_sizes(text: str, size: int) -> None:
    assert SIZE.convert(text, None, None) == size


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("0", 0),
        ("12345", 12345),
        ("2024-05-01T12:00:00Z", CREATED_MS),
        ("2024-05-01T12:00:00", CREATED_MS),
        ("2024-05-01T14:00:00+02:00", CREATED_MS),
    ],
)
def test_creation_times(text: str, ms: int) -> None:
    assert CREATION_TIME.convert(text, None, None) == ms


def test_hex_keys() -> None:
    assert KEY.convert("0a0B 0c", None, None) == b"\x0a\x0b\x0c"
    assert KEY.convert("0x0a0b", None, None) == b"\x0a\x0b"


def test_payload_preview() -> None:
    assert payload_preview(b"hello") == "'hello'"
    assert payload_preview(b"\x00\x01") == "00 01"
    assert payload_preview(b"a" * 100).endswith("'...")
    # A multi-byte character cut by the preview still reads as text.
    assert payload_preview(("é" * 60).encode()).startswith("'éé")
