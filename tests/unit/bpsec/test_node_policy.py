"""A node's BPSec policy: bundles its applications send are signed and encrypted with named
keys; bundles delivered to them are verified and decrypted first, and never delivered when
a check fails."""

from __future__ import annotations

import asyncio
import random

import pytest

from dtncloud.bpsec.node_policy import BundleSecurity
from dtncloud.bpsec.policy import survey
from dtncloud.bpv7 import Bundle, decode_bundle, encode_bundle
from dtncloud.bpv7.blocks import PAYLOAD_BLOCK_NUMBER
from dtncloud.engine import EngineConfig, EngineListener
from dtncloud.errors import ConfigError, SecurityError
from dtncloud.routing import default_registry
from dtncloud.runtime.node import Delivery, Node
from dtncloud.store.base import BundleMeta
from dtncloud.store.memory import MemoryStore

FLEET = bytes(range(32))
OTHER = bytes(range(1, 33))


def _bundle(payload: bytes = b"reading 42") -> Bundle:
    return Bundle.create(
        source="dtn://a/app", destination="dtn://b/inbox", payload=payload, creation_time=1
    )


def test_a_protected_bundle_is_opened_with_the_same_key() -> None:
    security = BundleSecurity({"fleet": FLEET}, sign="fleet", encrypt="fleet", accept="fleet")
    protect = security.protector()
    assert protect is not None
    sent = decode_bundle(encode_bundle(protect(_bundle())))
    smap = survey(sent)
    # the payload is encrypted, and so is the BIB over it (RFC 9172 3.9)
    assert PAYLOAD_BLOCK_NUMBER in smap.encrypted_by and smap.encrypted_bibs
    assert b"reading 42" not in encode_bundle(sent)
    opened = security.accept_delivery(sent)
    assert opened.payload == b"reading 42"
    assert not survey(opened).bibs and not survey(opened).bcbs


def test_a_wrong_key_or_a_flipped_bit_is_a_failed_security_operation() -> None:
    sender = BundleSecurity({"fleet": FLEET}, sign="fleet", encrypt="fleet")
    protect = sender.protector()
    assert protect is not None
    wire = bytearray(encode_bundle(protect(_bundle())))
    stranger = BundleSecurity({"other": OTHER}, accept="other")
    with pytest.raises(SecurityError) as wrong:
        stranger.accept_delivery(decode_bundle(bytes(wire)))
    assert wrong.value.reason == 15
    receiver = BundleSecurity({"fleet": FLEET}, accept="fleet")
    ciphertext_at = bytes(wire).index(bytes(decode_bundle(bytes(wire)).payload[:8]))
    wire[ciphertext_at] ^= 0x01
    with pytest.raises(SecurityError) as tampered:
        receiver.accept_delivery(decode_bundle(bytes(wire)))
    assert tampered.value.reason == 15


def test_require_refuses_unprotected_payloads_only() -> None:
    strict = BundleSecurity({"fleet": FLEET}, accept="fleet", require=True)
    with pytest.raises(SecurityError) as missing:
        strict.accept_delivery(_bundle())
    assert missing.value.reason == 12
    signed = BundleSecurity({"fleet": FLEET}, sign="fleet").protector()
    assert signed is not None
    assert strict.accept_delivery(signed(_bundle())).payload == b"reading 42"


def test_per_bundle_choices_override_the_defaults() -> None:
    security = BundleSecurity({"fleet": FLEET, "ops": OTHER}, sign="fleet")
    assert security.protector(False, False) is None
    only_ops = security.protector("ops", False)
    assert only_ops is not None
    signed = only_ops(_bundle())
    BundleSecurity({"ops": OTHER}, accept="ops").accept_delivery(signed)
    with pytest.raises(SecurityError):
        BundleSecurity({"fleet": FLEET}, accept="fleet").accept_delivery(signed)


def test_bad_policies_are_one_line_config_errors() -> None:
    with pytest.raises(ConfigError, match="no key named 'nope'"):
        BundleSecurity({"fleet": FLEET}, sign="nope")
    with pytest.raises(ConfigError, match="16 or 32 bytes"):
        BundleSecurity({"long": bytes(48)}, encrypt="long")
    with pytest.raises(ConfigError, match="needs an accept key"):
        BundleSecurity({"fleet": FLEET}, require=True)
    assert "0001" not in repr(BundleSecurity({"fleet": FLEET}))  # keys are never printed


class _Deleted(EngineListener):
    def __init__(self) -> None:
        self.reasons: list[int] = []
        self.event = asyncio.Event()

    def bundle_deleted(self, meta: BundleMeta, reason: int, now: int) -> None:
        self.reasons.append(int(reason))
        self.event.set()


def _node(security: BundleSecurity, listener: EngineListener | None = None) -> Node:
    router = default_registry.create("static", node_id="dtn://a/", rng=random.Random(1))
    return Node(
        EngineConfig("dtn://a/"), MemoryStore(), router, security=security, listener=listener
    )


def test_a_node_delivers_what_passes_and_deletes_what_fails() -> None:
    async def body() -> None:
        good = _node(
            BundleSecurity({"fleet": FLEET}, sign="fleet", encrypt="fleet", accept="fleet")
        )
        got: asyncio.Queue[Delivery] = asyncio.Queue()

        async def inbox(delivery: Delivery) -> None:
            await got.put(delivery)

        async with good:
            good.register("dtn://a/inbox", inbox)
            await good.send(
                "dtn://a/app", "dtn://a/inbox", b"secret", secure=good.security.protector()
            )
            assert (await asyncio.wait_for(got.get(), 10)).payload == b"secret"

        deleted = _Deleted()
        # signed with one key, checked with another: never delivered, deleted with reason 15
        mismatched = _node(
            BundleSecurity({"fleet": FLEET, "other": OTHER}, sign="other", accept="fleet"), deleted
        )
        async with mismatched:
            mismatched.register("dtn://a/inbox", inbox)
            await mismatched.send(
                "dtn://a/app", "dtn://a/inbox", b"x", secure=mismatched.security.protector()
            )
            await asyncio.wait_for(deleted.event.wait(), 10)
            await mismatched.idle()
            assert deleted.reasons == [15] and got.empty() and not mismatched.stored()

    asyncio.run(body())
