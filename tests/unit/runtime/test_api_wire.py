"""dtncloud.runtime.api_wire: frames round-trip however the stream is cut, and hostile or
broken input only ever raises RemoteProtocolError."""

from __future__ import annotations

import contextlib
import struct
from typing import Any

import cbor2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtncloud.errors import RemoteProtocolError, ServiceError
from dtncloud.runtime.api_wire import (
    ApiError,
    FrameDecoder,
    FrameTooLarge,
    encode_frame,
    error_answer,
    field,
)

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=40)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
_MAPS = st.dictionaries(st.text(max_size=10), _VALUES, max_size=6)


def decode_all(decoder: FrameDecoder, pieces: list[bytes]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for piece in pieces:
        decoder.feed(piece)
        out.extend(decoder)
    return out


@given(st.lists(_MAPS, min_size=1, max_size=5), st.data())
def test_frames_round_trip_over_any_split(
    messages: list[dict[str, Any]], data: st.DataObject
) -> None:
    stream = b"".join(encode_frame(m) for m in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    decoder = FrameDecoder(max_frame=len(stream))
    assert decode_all(decoder, pieces) == messages
    assert decoder.buffered == 0


@given(st.binary(max_size=200), st.integers(0, 300))
def test_garbage_raises_only_the_protocol_error(garbage: bytes, limit: int) -> None:
    decoder = FrameDecoder(max_frame=limit)
    try:
        decode_all(decoder, [garbage[:7], garbage[7:]])
    except RemoteProtocolError as exc:
        assert "\n" not in str(exc)


@given(_MAPS, st.binary(min_size=1, max_size=30))
def test_frame_with_a_corrupted_body_raises_only_the_protocol_error(
    message: dict[str, Any], noise: bytes
) -> None:
    body = cbor2.dumps(message)
    for position in range(len(body)):
        corrupted = bytearray(body)
        corrupted[position] = noise[position % len(noise)]
        decoder = FrameDecoder(max_frame=1 << 20)
        decoder.feed(struct.pack(">I", len(corrupted)) + corrupted)
        with contextlib.suppress(RemoteProtocolError):
            list(decoder)


def test_hostile_length_is_refused_from_the_header_alone() -> None:
    decoder = FrameDecoder(max_frame=1000)
    decoder.feed(b"\xff\xff\xff\xff")
    with pytest.raises(FrameTooLarge, match="4294967295 bytes exceeds the limit of 1000"):
        list(decoder)
    # nothing beyond what the peer sent was kept, and the stream stays refused
    assert decoder.buffered == 4
    with pytest.raises(FrameTooLarge):
        decoder.next_message()


def test_a_frame_at_the_limit_is_accepted() -> None:
    frame = encode_frame({"op": "ping", "id": 1})
    decoder = FrameDecoder(max_frame=len(frame) - 4)
    decoder.feed(frame)
    assert list(decoder) == [{"op": "ping", "id": 1}]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (cbor2.dumps([1, 2]), "array, not a map"),
        (cbor2.dumps("text"), "text string, not a map"),
        (cbor2.dumps({1: "x"}), "map key is a CBOR integer"),
        (cbor2.dumps({"a": 1}) + b"\x00", "1 stray bytes"),
        (b"", "empty frame"),
        (b"\xa1\x61", "undecodable CBOR"),
        (b"\x5b\x00\x00\x00\x10\x00\x00\x00\x00", "undecodable CBOR"),  # a 64 GiB byte string
    ],
)
def test_bad_bodies_are_protocol_errors(body: bytes, reason: str) -> None:
    decoder = FrameDecoder(max_frame=1 << 20)
    decoder.feed(struct.pack(">I", len(body)) + body)
    with pytest.raises(RemoteProtocolError, match=reason):
        list(decoder)


def test_decoder_waits_for_whole_frames() -> None:
    frame = encode_frame({"op": "ping", "id": 7})
    decoder = FrameDecoder(max_frame=100)
    decoder.feed(frame[:3])
    assert decoder.next_message() is None
    decoder.feed(frame[3:-1])
    assert decoder.next_message() is None
    decoder.feed(frame[-1:])
    assert decoder.next_message() == {"op": "ping", "id": 7}
    assert decoder.next_message() is None


def test_field_checks_types_and_names_the_field() -> None:
    request = {"endpoint": "x", "max": 3, "flag": True, "neg": -1, "payload": b"p"}
    assert field(request, "endpoint", str) == "x"
    assert field(request, "max", int) == 3
    assert field(request, "absent", int, 5) == 5
    assert field(request, "absent", str, None) is None
    with pytest.raises(ApiError, match="'absent' is missing") as missing:
        field(request, "absent", str)
    assert missing.value.code == "bad_request"
    with pytest.raises(ApiError, match="'flag' must be an unsigned integer"):
        field(request, "flag", int)
    with pytest.raises(ApiError, match="'neg' must not be negative"):
        field(request, "neg", int)
    with pytest.raises(ApiError, match="'payload' must be text"):
        field(request, "payload", str)


def test_api_error_is_a_service_error_with_a_known_code() -> None:
    assert isinstance(ApiError("x", "conflict"), ServiceError)
    assert ApiError("x", "conflict").code == "conflict"
    assert ApiError("x", "made-up").code == "internal"
    assert error_answer(3, "refused", "two\nlines") == {
        "id": 3,
        "ok": False,
        "error": "two lines",
        "code": "refused",
    }
