"""Fixtures and settings shared by the whole test suite."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.vectors import VECTORS_DIR, load_vectors

# Hypothesis: "dev" by default, "ci" when the CI environment variable is set (CI runs on a
# 2-core machine next to the whole suite, so no per-example deadline there either).
# HYPOTHESIS_PROFILE=<name> picks one explicitly.
settings.register_profile("dev", deadline=None)
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=200,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


@pytest.fixture
def vectors() -> Callable[[str], Any]:
    """Loader for the JSON files in tests/vectors/: ``vectors("bpv7_ud3tn")["vectors"]``."""
    return load_vectors


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """Absolute path of tests/vectors/."""
    return VECTORS_DIR
