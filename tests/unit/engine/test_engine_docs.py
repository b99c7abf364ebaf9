"""The examples in docs/engine.md are doctests: they must keep running."""

from __future__ import annotations

import doctest
from pathlib import Path

DOC = Path(__file__).resolve().parents[3] / "docs" / "engine.md"


def test_engine_docs_examples_run() -> None:
    result = doctest.testfile(str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, "the document lost its examples"
    assert result.failed == 0
