"""The decisions of a sync: names on the stick, bundle facts, when a copy is done, order."""

from __future__ import annotations

import pytest

from dtncloud.bpv7 import Bundle, encode_bundle
from dtncloud.bpv7.admin import admin_bundle
from dtncloud.bpv7.bibe import BibePdu
from dtncloud.mule.manifest import Entry, Manifest, is_bundle_file_name
from dtncloud.mule.plan import (
    BundleFacts,
    bundle_facts,
    bundle_file_name,
    done_reason,
    node_dir_name,
    order_key,
    unwrap_bpdu,
)

NOW = 800_000_000_000


def entry(**changes: object) -> Entry:
    values: dict[str, object] = {
        "bundle_id": "dtn://a/@1.0",
        "destination": "dtn://c/inbox",
        "size": 10,
        "sha256": "ab" * 32,
        "expires_ms": NOW + 1000,
        "peers": ("dtn://r/",),
    }
    values.update(changes)
    return Entry(**values)  # type: ignore[arg-type]


def manifest(
    node: str, *, taken: tuple[str, ...] = (), delivered: tuple[str, ...] = ()
) -> Manifest:
    return Manifest(
        node,
        "00" * 32,
        taken={sha: NOW + 1 for sha in taken},
        delivered={bundle_id: NOW + 1 for bundle_id in delivered},
    )


def test_directory_names_are_readable_safe_and_distinct() -> None:
    assert node_dir_name("dtn://site-a/").startswith("site-a-")
    assert node_dir_name("ipn:7.0").startswith("ipn-7.0-")
    assert node_dir_name("dtn://a/") != node_dir_name("dtn://A/")
    for node in ("dtn://we:ird/", "dtn://a/b/", "ipn:1.0", "dtn://x" + "y" * 100 + "/"):
        name = node_dir_name(node)
        assert all(c.isalnum() or c in ".-" for c in name) and len(name) <= 49


def test_a_bundle_keeps_its_file_name() -> None:
    name = bundle_file_name("dtn://a/@1.0")
    assert name == bundle_file_name("dtn://a/@1.0") != bundle_file_name("dtn://a/@1.1")
    assert is_bundle_file_name(name)


def test_a_copy_stays_until_its_peer_takes_it_or_it_is_delivered() -> None:
    e = entry()
    assert done_reason(e, {}, NOW) is None
    # a site the stick passes by takes it: that does not retire the copy
    assert done_reason(e, {"dtn://v/": manifest("dtn://v/", taken=(e.sha256,))}, NOW) is None
    assert done_reason(e, {"dtn://r/": manifest("dtn://r/", taken=(e.sha256,))}, NOW) == "taken"
    # another copy (other bytes) taken by r says nothing about this one
    assert done_reason(e, {"dtn://r/": manifest("dtn://r/", taken=("cd" * 32,))}, NOW) is None
    # delivered at its destination retires every copy; claimed by another node it does not
    assert done_reason(e, {"dtn://c/": manifest("dtn://c/", delivered=(e.bundle_id,))}, NOW) == (
        "delivered"
    )
    assert done_reason(e, {"dtn://r/": manifest("dtn://r/", delivered=(e.bundle_id,))}, NOW) is None
    assert done_reason(e, {}, NOW + 1000) == "expired"


def test_a_copy_for_several_peers_stays_until_all_took_it() -> None:
    e = entry(peers=("dtn://r/", "dtn://s/"))
    r = manifest("dtn://r/", taken=(e.sha256,))
    assert done_reason(e, {"dtn://r/": r}, NOW) is None
    s = manifest("dtn://s/", taken=(e.sha256,))
    assert done_reason(e, {"dtn://r/": r, "dtn://s/": s}, NOW) == "taken"


def test_facts_of_a_bundle() -> None:
    bundle = Bundle.create(
        source="dtn://a/app",
        destination="dtn://b/inbox",
        payload=b"x",
        creation_time=NOW,
        lifetime=60_000,
    )
    data = encode_bundle(bundle)
    facts = bundle_facts(data, NOW + 5, max_size=1 << 20)
    assert facts == BundleFacts(
        str(bundle.id), "dtn://a/app", "dtn://b/inbox", NOW + 60_000, len(data)
    )


def test_a_bpdu_is_unwrapped_and_other_bundles_are_not() -> None:
    inner = encode_bundle(
        Bundle.create(
            source="dtn://a/app", destination="dtn://b/x", payload=b"x", creation_time=NOW
        )
    )
    pdu = admin_bundle(
        BibePdu(7, NOW + 1000, inner), source="dtn://a/", destination="dtn://r/", creation_time=NOW
    )
    assert unwrap_bpdu(encode_bundle(pdu), max_size=1 << 20) == inner
    assert unwrap_bpdu(inner, max_size=1 << 20) is None
    assert unwrap_bpdu(b"\x06junk", max_size=1 << 20) is None


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("urgent", ["soon-big", "late-small"]),
        ("smallest", ["late-small", "soon-big"]),
        ("engine", ["soon-big", "late-small"]),
    ],
)
def test_order_keys(order: str, expected: list[str]) -> None:
    offers = {
        "soon-big": BundleFacts("1", "s", "d", NOW, 5000),
        "late-small": BundleFacts("2", "s", "d", NOW + 10, 100),
    }
    ranked = sorted(
        offers, key=lambda name: order_key(order, offers[name], list(offers).index(name))
    )
    assert ranked == expected
