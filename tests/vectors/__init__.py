"""Test vectors: JSON files in this folder, and the helpers that load them.

Each file is an object; most keep their cases in a ``"vectors"`` list. Use :func:`load_vectors`
for a whole file and :func:`vector_params` to parametrize a test over a file's cases::

    @pytest.mark.parametrize("case", vector_params("bpv7_ud3tn"))
    def test_decodes(case): ...

The ``vectors`` fixture in ``tests/conftest.py`` is :func:`load_vectors`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

VECTORS_DIR = Path(__file__).resolve().parent


def vector_path(name: str) -> Path:
    """Path of vector file ``name`` (with or without ``.json``); FileNotFoundError if absent."""
    path = VECTORS_DIR / (name if name.endswith(".json") else f"{name}.json")
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in VECTORS_DIR.glob("*.json")))
        raise FileNotFoundError(f"no vector file {path.name!r} in {VECTORS_DIR} (known: {known})")
    return path


def load_vectors(name: str) -> Any:
    """The parsed JSON of vector file ``name``; a fresh object on every call, safe to mutate."""
    with vector_path(name).open(encoding="utf-8") as f:
        return json.load(f)


def vector_params(name: str, key: str = "vectors", id_field: str = "name") -> list[Any]:
    """``pytest.param`` for each case in ``load_vectors(name)[key]``, with readable test IDs."""
    cases = load_vectors(name)[key]
    params = []
    for index, case in enumerate(cases):
        label = case.get(id_field) if isinstance(case, dict) else None
        params.append(pytest.param(case, id=str(label) if label else f"{name}[{index}]"))
    return params
