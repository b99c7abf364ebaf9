"""TCPCLv4 messages: the published vectors, incremental parsing and bounded memory."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest

from dtncloud.tcpcl.events import ExtensionItem
from dtncloud.tcpcl.messages import (
    BadMagic,
    BadMessage,
    ContactHeader,
    Item,
    Keepalive,
    MessageReader,
    MsgReject,
    SessInit,
    SessTerm,
    SkippedSegment,
    UnknownMessage,
    XferAck,
    XferRefuse,
    XferSegment,
    encode_extensions,
)
from tests.vectors import load_vectors, vector_params

VECTORS = vector_params("tcpclv4_messages")
MRU = 1 << 20


def fields(case: dict[str, Any]) -> dict[str, Any]:
    # The demo-agent MSG_REJECT vector carries both readings; the RFC one is ours.
    return case.get("parsed") or case["parsed_per_rfc9174"]


def reader_for(case: dict[str, Any], **kwargs: Any) -> MessageReader:
    return MessageReader(
        max_segment=MRU, expect_contact=fields(case)["type"] == "CONTACT_HEADER", **kwargs
    )


def parse_all(reader: MessageReader, data: bytes, step: int | None = None) -> list[Item]:
    items: list[Item] = []
    step = step or len(data) or 1
    for offset in range(0, len(data), step):
        reader.feed(data[offset : offset + step])
        while (item := reader.next()) is not None:
            items.append(item)
    return items


def extensions(case_items: list[dict[str, Any]]) -> tuple[ExtensionItem, ...]:
    return tuple(
        ExtensionItem(i["type"], bytes.fromhex(i["value_hex"]), bool(i["flags"] & 1))
        for i in case_items
    )


def build(expected: dict[str, Any]) -> Any:
    """The message object the vector's parsed fields describe."""
    kind = expected["type"]
    if kind == "CONTACT_HEADER":
        return ContactHeader(expected["version"], expected["flags"])
    if kind == "SESS_INIT":
        return SessInit(
            expected["keepalive"],
            expected["segment_mru"],
            expected["transfer_mru"],
            expected["node_id"],
            extensions(expected["ext_items"]),
        )
    if kind == "SESS_TERM":
        return SessTerm(expected["flags"], expected["reason"])
    if kind == "KEEPALIVE":
        return Keepalive()
    if kind == "MSG_REJECT":
        return MsgReject(expected["reason"], expected["rejected_header"])
    if kind == "XFER_REFUSE":
        return XferRefuse(expected["reason"], expected["transfer_id"])
    if kind == "XFER_SEGMENT":
        assert bool(expected["flags"] & 2) == expected["start"]
        assert bool(expected["flags"] & 1) == expected["end"]
        return XferSegment(
            expected["flags"],
            expected["transfer_id"],
            bytes.fromhex(expected["data_hex"]),
            extensions(expected["ext_items"]),
        )
    if kind == "XFER_ACK":
        return XferAck(expected["flags"], expected["transfer_id"], expected["ack_length"])
    raise AssertionError(f"vector type {kind} not covered")


def test_every_vector_is_covered() -> None:
    cases = load_vectors("tcpclv4_messages")["vectors"]
    assert len(cases) == 23
    kinds = {fields(case)["type"] for case in cases}
    assert kinds == {
        "CONTACT_HEADER",
        "SESS_INIT",
        "SESS_TERM",
        "KEEPALIVE",
        "MSG_REJECT",
        "XFER_REFUSE",
        "XFER_SEGMENT",
        "XFER_ACK",
    }


@pytest.mark.parametrize("case", VECTORS)
def test_vector_parses_to_its_fields(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    reader = reader_for(case)
    assert parse_all(reader, data) == [build(fields(case))]
    assert reader.buffered == 0


@pytest.mark.parametrize("case", VECTORS)
def test_vector_reencodes_byte_for_byte(case: dict[str, Any]) -> None:
    assert build(fields(case)).encode().hex() == case["hex"]


@pytest.mark.parametrize("case", VECTORS)
def test_truncated_vector_needs_more_data(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    for cut in range(len(data)):
        reader = reader_for(case)
        reader.feed(data[:cut])
        assert reader.next() is None, cut
        assert reader.next() is None
        # The rest completes it, as if it had just been late.
        reader.feed(data[cut:])
        assert reader.next() == build(fields(case))


@pytest.mark.parametrize("case", VECTORS)
def test_vector_fed_byte_by_byte(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    assert parse_all(reader_for(case), data, step=1) == [build(fields(case))]


def test_messages_back_to_back_in_any_split() -> None:
    cases = [
        c
        for c in load_vectors("tcpclv4_messages")["vectors"]
        if fields(c)["type"] != "CONTACT_HEADER"
    ]
    stream = b"".join(bytes.fromhex(c["hex"]) for c in cases)
    expected = [build(fields(c)) for c in cases]
    assert len(expected) == 21
    for step in (1, 2, 3, 7, 13, 64):
        assert parse_all(MessageReader(max_segment=MRU), stream, step) == expected


def test_input_buffers_may_be_reused_by_the_caller() -> None:
    segment = XferSegment(3, 9, b"abcdef").encode()
    chunk = bytearray(segment[:20])
    reader = MessageReader(max_segment=MRU)
    reader.feed(memoryview(chunk))
    assert reader.next() is None
    chunk[:] = b"\xff" * len(chunk)  # the caller reuses its buffer
    reader.feed(bytearray(segment[20:]))
    assert reader.next() == XferSegment(3, 9, b"abcdef")


def test_extension_items_encode_with_the_critical_flag() -> None:
    items = (ExtensionItem(0x8001, b"ab", critical=True), ExtensionItem(5, b""))
    assert encode_extensions(items).hex() == "01800100026162" + "0000050000"


def test_segment_without_start_has_no_extension_length() -> None:
    assert XferSegment(0, 1, b"x").encode().hex() == "0100" + "0000000000000001" + "0" * 15 + "178"


# --- contact header ----------------------------------------------------------------------
@pytest.mark.parametrize("junk", [b"G", b"GET / HTTP/1.1\r\n", b"dtx!\x04\x00", b"\x00"])
def test_bad_magic_is_seen_at_the_first_wrong_byte(junk: bytes) -> None:
    reader = MessageReader(max_segment=MRU, expect_contact=True)
    reader.feed(junk)
    item = reader.next()
    assert isinstance(item, BadMagic)
    assert item.data == junk[:4]
    reader.feed(ContactHeader().encode())
    assert reader.next() is None  # nothing is parsed after that


def test_contact_header_of_other_version_is_reported() -> None:
    reader = MessageReader(max_segment=MRU, expect_contact=True)
    reader.feed(b"dtn!\x03\x00\x00\x3c")
    assert reader.next() == ContactHeader(3, 0)


# --- message-level errors ----------------------------------------------------------------
@pytest.mark.parametrize("kind", [0x00, 0x08, 0x7F, 0xF0, 0xFF])
def test_unknown_message_type_stops_the_reader(kind: int) -> None:
    reader = MessageReader(max_segment=MRU)
    assert parse_all(reader, bytes([0x04, kind, 0x04])) == [Keepalive(), UnknownMessage(kind)]
    reader.feed(b"\x04")
    assert reader.next() is None


def sess_init_raw(node: bytes, ext_block: bytes, ext_len: int | None = None) -> bytes:
    length = len(ext_block) if ext_len is None else ext_len
    return (
        bytes.fromhex("07003c" + "00" * 7 + "10" + "00" * 7 + "20")
        + len(node).to_bytes(2, "big")
        + node
        + length.to_bytes(4, "big")
        + ext_block
    )


@pytest.mark.parametrize(
    "data",
    [
        sess_init_raw(b"\xff\xfe", b""),
        sess_init_raw(b"dtn://a/", b"\x00\x00\x01\x00\x05ab"),  # item longer than the block
        sess_init_raw(b"dtn://a/", b"\x00\x00"),  # half an item header
    ],
    ids=["node ID not UTF-8", "item overruns", "truncated item"],
)
def test_invalid_sess_init_is_a_bad_message_with_framing_intact(data: bytes) -> None:
    reader = MessageReader(max_segment=MRU)
    items = parse_all(reader, data + b"\x04")
    assert isinstance(items[0], BadMessage)
    assert items[0].message_type == 0x07
    assert items[1:] == [Keepalive()]


def test_malformed_transfer_extensions_skip_the_segment() -> None:
    data = bytes.fromhex("0102" + "00" * 7 + "05" + "00000002" + "0000") + (3).to_bytes(8, "big")
    seen: list[Any] = []
    reader = MessageReader(max_segment=MRU, on_segment=lambda *a: seen.append(a) or True)
    assert parse_all(reader, data + b"abc" + b"\x04") == [SkippedSegment(2, 5, 3), Keepalive()]
    assert seen == [(2, 5, 3, None)]


def test_dtn7_gold_variant_is_not_guessed() -> None:
    # dtn7-gold puts a U32 extension length on every segment; read by RFC 9174 its second
    # segment is an empty segment followed by a message of type 0x00.
    gold = bytes.fromhex("0100" + "0000000000000001" + "00000000" + "0000000000000002") + b"hi"
    items = parse_all(MessageReader(max_segment=MRU), gold)
    assert items == [XferSegment(0, 1, b""), UnknownMessage(0)]


# --- the segment hook and skipping ---------------------------------------------------------
def test_hook_runs_once_per_segment_before_its_data() -> None:
    calls: list[tuple[Any, ...]] = []

    def hook(*args: Any) -> bool:
        calls.append(args)
        return args[1] != 2  # skip transfer 2

    stream = b"".join(
        (
            XferSegment(2, 1, b"a" * 100, (ExtensionItem(1, bytes(8)),)).encode(),
            XferSegment(3, 2, b"b" * 50).encode(),
            XferSegment(1, 1, b"c" * 10).encode(),
        )
    )
    reader = MessageReader(max_segment=MRU, on_segment=hook)
    items = parse_all(reader, stream, step=1)
    assert items == [
        XferSegment(2, 1, b"a" * 100, (ExtensionItem(1, bytes(8)),)),
        SkippedSegment(3, 2, 50),
        XferSegment(1, 1, b"c" * 10),
    ]
    assert calls == [(2, 1, 100, (ExtensionItem(1, bytes(8)),)), (3, 2, 50, ()), (1, 1, 10, ())]


def test_segment_over_the_limit_is_skipped_and_the_stream_goes_on() -> None:
    stream = XferSegment(3, 7, b"z" * 1000).encode() + XferAck(3, 7, 5).encode()
    for step in (1, 100, len(stream)):
        reader = MessageReader(max_segment=999)
        assert parse_all(reader, stream, step) == [SkippedSegment(3, 7, 1000), XferAck(3, 7, 5)]


def test_oversized_transfer_extensions_are_skipped_with_the_data() -> None:
    ext_block = bytes(70_000)
    stream = (
        bytes.fromhex("0102" + "0000000000000009")
        + len(ext_block).to_bytes(4, "big")
        + ext_block
        + (4).to_bytes(8, "big")
        + b"data"
        + Keepalive().encode()
    )
    seen: list[Any] = []
    for step in (1, 333, len(stream)):
        reader = MessageReader(max_segment=MRU, on_segment=lambda *a: seen.append(a) or True)
        assert parse_all(reader, stream, step) == [SkippedSegment(2, 9, None), Keepalive()]
    assert seen == [(2, 9, None, None)] * 3


def test_oversized_session_extensions_are_skipped() -> None:
    stream = sess_init_raw(b"", bytes(100_000)) + Keepalive().encode()
    items = parse_all(MessageReader(max_segment=MRU), stream, 4096)
    assert isinstance(items[0], BadMessage)
    assert items[1:] == [Keepalive()]


# --- hostile lengths allocate nothing -----------------------------------------------------
HOSTILE = {
    "2^64-1 byte segment": bytes.fromhex("0103" + "00" * 8 + "00000000" + "ff" * 8),
    "2^64-1 byte middle segment": bytes.fromhex("0100" + "00" * 8 + "ff" * 8),
    "2^32-1 byte transfer extensions": bytes.fromhex("0102" + "00" * 8 + "ffffffff"),
    "2^32-1 byte session extensions": sess_init_raw(b"dtn://a/", b"", 0xFFFF_FFFF),
}


@pytest.mark.parametrize("data", list(HOSTILE.values()), ids=list(HOSTILE))
def test_announced_lengths_allocate_nothing(data: bytes) -> None:
    filler = bytes(1 << 16)
    tracemalloc.start()
    try:
        reader = MessageReader(max_segment=MRU)
        reader.feed(data)
        first = reader.next()
        # Keep feeding: skipped data must be dropped as it comes, never kept.
        for _ in range(64):
            reader.feed(filler)
            assert reader.next() is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(first, SkippedSegment | BadMessage)
    assert reader.buffered == 0
    assert peak < 300_000


def test_long_node_id_is_bounded_by_its_u16_length() -> None:
    node = b"n" * 0xFFFF
    data = sess_init_raw(node, b"")
    reader = MessageReader(max_segment=MRU)
    reader.feed(data[:-1])
    assert reader.next() is None
    assert reader.buffered == len(data) - 1 < 70_000
    reader.feed(data[-1:])
    item = reader.next()
    assert isinstance(item, SessInit)
    assert item.node_id == node.decode()


def test_close_drops_everything() -> None:
    reader = MessageReader(max_segment=MRU)
    reader.feed(XferSegment(3, 1, b"x" * 100).encode()[:50])
    assert reader.next() is None
    reader.close()
    assert reader.buffered == 0
    reader.feed(Keepalive().encode())
    assert reader.next() is None


# --- reading into the reader's own blocks (get_buffer / buffer_updated) --------------------
def parse_into(reader: MessageReader, data: bytes, steps: list[int]) -> list[Item]:
    """Like a BufferedProtocol: write up to each step's bytes into the room offered."""
    items: list[Item] = []
    offset = 0
    turn = 0
    while offset < len(data):
        room = reader.get_buffer(-1)
        assert len(room) > 0 and not room.readonly
        size = min(len(room), steps[turn % len(steps)], len(data) - offset)
        room[:size] = data[offset : offset + size]
        del room
        reader.buffer_updated(size)
        offset += size
        turn += 1
        while (item := reader.next()) is not None:
            items.append(item)
    return items


def bulk_stream(segments: int, length: int) -> bytes:
    parts = [XferSegment(2, 5, bytes([0]) * length, ()).encode()]
    parts += [XferSegment(0, 5, bytes([i % 251]) * length).encode() for i in range(1, segments)]
    return b"".join([*parts, XferAck(3, 1, 10).encode()])


@pytest.mark.parametrize("steps", [[1], [7, 1000, 3], [65536], [1 << 22]])
def test_reading_into_the_reader_gives_what_feeding_gives(steps: list[int]) -> None:
    cases = [c for c in VECTORS if fields(c.values[0])["type"] != "CONTACT_HEADER"]
    stream = b"".join(bytes.fromhex(c.values[0]["hex"]) for c in cases)
    stream += bulk_stream(5, 300_000 if min(steps) > 1 else 2_000)
    expected = parse_all(MessageReader(max_segment=MRU), stream)
    assert parse_into(MessageReader(max_segment=MRU), stream, steps) == expected


def test_segment_data_is_a_read_only_view_that_later_reads_never_overwrite() -> None:
    reader = MessageReader(max_segment=MRU)
    stream = bulk_stream(40, 100_000)
    held = [item for item in parse_into(reader, stream, [70_000]) if isinstance(item, XferSegment)]
    assert all(isinstance(item.data, memoryview) and item.data.readonly for item in held)
    assert [bytes(item.data[:1]) for item in held] == [bytes([i % 251]) for i in range(40)]
    assert all(bytes(item.data) == bytes(item.data[:1]) * 100_000 for item in held)


def test_blocks_are_reused_once_nothing_refers_to_them() -> None:
    reader = MessageReader(max_segment=MRU)
    stream = bulk_stream(8, MRU)
    tracemalloc.start()
    try:
        for _ in range(8):  # 64 MiB through, each segment dropped once parsed
            assert len(parse_into(reader, stream, [300_000])) == 9
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * MRU


def test_a_segment_the_caller_keeps_keeps_its_block_and_only_that() -> None:
    reader = MessageReader(max_segment=MRU)
    first = parse_into(reader, bulk_stream(1, MRU), [MRU])[0]
    assert isinstance(first, XferSegment)
    kept = bytes(first.data)
    for _ in range(4):
        parse_into(reader, bulk_stream(4, MRU), [200_000])
    assert first.data == kept


def test_trim_swaps_a_large_block_for_a_small_one() -> None:
    reader = MessageReader(max_segment=MRU)
    stream = bulk_stream(4, MRU)
    assert len(parse_into(reader, stream[:-16], [MRU])) == 4  # and 2 bytes of an XFER_ACK
    assert len(reader._block) > MRU
    reader.trim()
    assert len(reader._block) < MRU // 4 and not reader._spares
    assert parse_into(reader, stream[-16:], [MRU]) == [XferAck(3, 1, 10)]


def test_hostile_lengths_allocate_nothing_through_get_buffer() -> None:
    filler = bytes(1 << 16)
    tracemalloc.start()
    try:
        for data in HOSTILE.values():
            reader = MessageReader(max_segment=MRU)
            parse_into(reader, data, [1 << 16])
            for _ in range(16):
                assert parse_into(reader, filler, [1 << 16]) == []
            assert reader.buffered == 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 300_000
