"""The Python examples of docs/routing.md run (those before the cgr section, which has its
own author)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "routing.md"


def examples() -> list[str]:
    text = DOC.read_text(encoding="utf-8").split("## Contact graph routing")[0]
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_there_are_examples() -> None:
    assert len(examples()) >= 8


@pytest.mark.parametrize("source", examples())
def test_example_runs(source: str) -> None:
    exec(compile(source, str(DOC), "exec"), {"__name__": "routing_doc_example"})
