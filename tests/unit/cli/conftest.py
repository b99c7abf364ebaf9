"""Fixtures for the ``dtncloud`` command tests: a runner in a temporary directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dtncloud.cli import cli
from tests.unit.cli.helpers import CREATED_ISO, Run


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """``run("bundle", "create", ..., input=b"...")``: the CLI, run in ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args: object, input: bytes | str | None = None) -> Result:
        return runner.invoke(cli, [str(arg) for arg in args], input=input)

    return invoke


@pytest.fixture
def make_bundle(run: Run, tmp_path: Path) -> Callable[..., Path]:
    """Write a bundle with ``bundle create`` and return its path. Keyword arguments become
    options (``hop_limit=5`` is ``--hop-limit 5``); the payload defaults to a short text."""

    def make(name: str = "plain.bundle", **options: object) -> Path:
        args: list[object] = ["bundle", "create", "--source", "dtn://sensor/temp"]
        args += ["--dest", "dtn://cloud/in", "--creation-time", CREATED_ISO, "--out", name]
        if "payload_file" not in options:
            options.setdefault("text", "hello from the field")
        for key, value in options.items():
            flag = f"--{key.replace('_', '-')}"
            args += [flag] if value is True else [flag, value]
        result = run(*args)
        assert result.exit_code == 0, result.output
        return tmp_path / name

    return make
