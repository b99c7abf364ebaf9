"""The agent's bundle index keeps its forward-pending subset in step with every change."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dtncloud.engine.view import BundleIndex
from dtncloud.store.base import BundleMeta, Retention

FP = Retention.FORWARD_PENDING
DP = Retention.DISPATCH_PENDING


def meta(bundle_id: str, retention: Retention = FP) -> BundleMeta:
    return BundleMeta(
        bundle_id=bundle_id,
        source="dtn://a/",
        destination="dtn://b/",
        creation_time=1,
        sequence=0,
        expires_at=10,
        size=1,
        received_at=0,
        retention=retention,
    )


def filtered(index: BundleIndex) -> list[BundleMeta]:
    """What the view returned before the index kept the subset: a filter of the whole."""
    return [m for m in index.values() if m.retention & FP]


def test_waiting_follows_sets_and_removals_in_index_order() -> None:
    index = BundleIndex()
    for name in "abcde":
        index[name] = meta(name, FP if name != "c" else DP)
    assert [m.bundle_id for m in index.waiting()] == ["a", "b", "d", "e"]
    index["b"] = replace(index["b"], retention=DP)  # no longer waiting
    index["d"] = replace(index["d"], routing=b"x")  # changed in place
    del index["a"]
    assert index.pop("e").bundle_id == "e"
    assert index.pop("zz", None) is None
    assert index.waiting() == filtered(index) == [index["d"]]
    index["a"] = meta("a")  # back again: now the newest
    assert [m.bundle_id for m in index.waiting()] == ["d", "a"]


def test_a_held_bundle_waiting_again_keeps_its_first_place() -> None:
    index = BundleIndex()
    for name in "abc":
        index[name] = meta(name, DP if name == "a" else FP)
    index["a"] = replace(index["a"], retention=DP | FP)  # e.g. custody handed back
    assert [m.bundle_id for m in index.waiting()] == ["a", "b", "c"]
    assert index.waiting() == filtered(index)


def test_other_ways_of_changing_are_refused() -> None:
    index = BundleIndex()
    with pytest.raises(TypeError):
        index.update({"a": meta("a")})
    with pytest.raises(TypeError):
        index.setdefault("a", meta("a"))
    index["a"] = meta("a")
    index.clear()
    assert index.waiting() == [] and not index
