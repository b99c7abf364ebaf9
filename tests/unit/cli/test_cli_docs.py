"""The examples in docs/bundles.md and docs/cli.md run as written, with the output shown.

docs/cli.md's ``console`` blocks are run one after the other with bash in one empty
directory, as a reader would type them; each command's output (stdout and stderr together)
must be what the page shows. A block marked ``<!-- varies -->`` shows a real run whose
timings and clock readings differ from run to run; those are masked before comparing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[3] / "docs"
PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
CONSOLE_BLOCK = re.compile(r"(<!-- varies -->\n)?```console\n(.*?)```", re.DOTALL)
LINK = re.compile(r"\]\(([a-z0-9-]+\.md)(#[a-z0-9-]*)?\)")
# What changes between runs of a "varies" block: durations, ISO times, DTN times.
VARYING = (
    (re.compile(r"\b\d+(\.\d+)? (µs|ms)\b"), "<duration>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"), "<time>"),
    (re.compile(r"\b\d{12,}\b"), "<dtn-time>"),
)

BUNDLE_EXAMPLES = PYTHON_BLOCK.findall((DOCS / "bundles.md").read_text(encoding="utf-8"))


def _sessions(text: str) -> list[tuple[str, list[str], bool]]:
    """(command, expected output lines, varies) for every command of every console block."""
    items = []
    for match in CONSOLE_BLOCK.finditer(text):
        lines = match[2].splitlines()
        i = 0
        while i < len(lines):
            assert lines[i].startswith("$ "), lines[i]
            command = lines[i][2:]
            while command.endswith("\\"):
                i += 1
                command += "\n" + lines[i]
            i += 1
            output = []
            while i < len(lines) and not lines[i].startswith("$ "):
                output.append(lines[i])
                i += 1
            items.append((command, output, bool(match[1])))
    return items


def _mask(lines: list[str]) -> list[str]:
    masked = []
    for line in lines:
        for pattern, replacement in VARYING:
            line = pattern.sub(replacement, line)
        masked.append(line)
    return masked


def test_bundles_page_has_examples() -> None:
    assert len(BUNDLE_EXAMPLES) >= 8


@pytest.mark.parametrize(
    "code", BUNDLE_EXAMPLES, ids=[f"example{i}" for i in range(len(BUNDLE_EXAMPLES))]
)
def test_bundles_example_runs(code: str) -> None:
    exec(compile(code, str(DOCS / "bundles.md"), "exec"), {})


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="the examples are bash sessions")
def test_cli_page_sessions(tmp_path: Path) -> None:
    # "dtncloud" on the PATH runs this checkout with this interpreter.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "dtncloud"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m dtncloud "$@"\n')
    wrapper.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(DOCS.parent), env.get("PYTHONPATH")]))
    env.pop("CONTENT_KEY", None)
    exports: list[str] = []
    sessions = _sessions((DOCS / "cli.md").read_text(encoding="utf-8"))
    assert len(sessions) >= 30
    for command, expected, varies in sessions:
        result = subprocess.run(
            ["bash", "-c", "\n".join([*exports, command])],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            check=False,
        )
        if command.startswith("export "):
            exports.append(command)
        output = result.stdout.rstrip("\n").splitlines()
        if varies:
            output, expected = _mask(output), _mask(expected)
        assert output == expected, f"$ {command}"


@pytest.mark.parametrize("page", ["index.md", "bundles.md", "cli.md"])
def test_links_lead_somewhere(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    for target, _ in LINK.findall(text):
        assert (DOCS / target).exists(), f"{page} links to missing {target}"
