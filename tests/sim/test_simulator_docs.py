"""The examples in docs/simulator.md and in dtncloud.sim.world are doctests."""

from __future__ import annotations

import doctest
from pathlib import Path

import dtncloud.sim.world

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulator.md"


def test_simulator_docs_examples_run() -> None:
    result = doctest.testfile(str(DOC), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, "the document lost its examples"
    assert result.failed == 0


def test_world_docstring_example_runs() -> None:
    result = doctest.testmod(dtncloud.sim.world)
    assert result.attempted > 0
    assert result.failed == 0
