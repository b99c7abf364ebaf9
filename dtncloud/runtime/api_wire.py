"""The application API's wire format, sans-IO: length-prefixed CBOR maps.

A frame is a 4-byte big-endian length ``N`` followed by ``N`` bytes of CBOR that encode one
map with text keys. :func:`encode_frame` makes one; :class:`FrameDecoder` takes bytes as they
come and gives back the maps, refusing a frame longer than its limit before any of it is
buffered. What the maps mean (requests, answers, pushes) is described in ``docs/api.md``; the
names shared by the server (:mod:`dtncloud.runtime.apps`) and the client
(:mod:`dtncloud.client`) are here so that the two cannot drift apart.

Errors: a peer that breaks the framing gets :class:`~dtncloud.errors.RemoteProtocolError`; an
error answer of the protocol is an :class:`ApiError` (a :class:`~dtncloud.errors.ServiceError`
with the answer's ``code``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import Any, Final

import cbor2

from dtncloud.cborutil import CborError, DecodeBudget, Tagged, Undefined, decode_item
from dtncloud.errors import RemoteProtocolError, ServiceError

__all__ = [
    "API_VERSION",
    "ERROR_CODES",
    "FRAME_OVERHEAD",
    "ApiError",
    "FrameDecoder",
    "FrameTooLarge",
    "encode_frame",
    "error_answer",
    "field",
]

#: The protocol version a ``hello`` names; bumped only for incompatible changes.
API_VERSION: Final = 1
#: What a frame may hold beside a ``send``'s payload (the limit is max_payload + this).
FRAME_OVERHEAD: Final = 64 * 1024
#: The ``code`` of every error answer.
ERROR_CODES: Final = frozenset(
    {"bad_request", "unauthorized", "not_found", "refused", "conflict", "too_large", "internal"}
)

_LENGTH = struct.Struct(">I")
_MAX_DEPTH = 16


class FrameTooLarge(RemoteProtocolError):
    """A frame announced a length over the receiver's limit."""


class ApiError(ServiceError):
    """An error answer of the application API: ``code`` is one of :data:`ERROR_CODES` and
    the message is the server's one-line explanation."""

    def __init__(self, message: str, code: str = "internal") -> None:
        super().__init__(message)
        self.code = code if code in ERROR_CODES else "internal"


def encode_frame(message: Mapping[str, Any]) -> bytes:
    """One frame: the length, then the CBOR of ``message``."""
    body: bytes = cbor2.dumps(dict(message))
    if len(body) > 0xFFFF_FFFF:
        raise ValueError(f"a message of {len(body)} bytes does not fit in one frame")
    return _LENGTH.pack(len(body)) + body


class FrameDecoder:
    """Incremental frame parser: :meth:`feed` bytes, then iterate to take the maps.

    Iteration stops when no whole frame is buffered. A length over ``max_frame``, CBOR that is
    not one well-formed map with text keys, or trailing bytes inside a frame raise
    :class:`~dtncloud.errors.RemoteProtocolError`; after that the decoder keeps raising, since
    the stream has no frame boundaries left to trust.
    """

    def __init__(self, max_frame: int) -> None:
        self.max_frame = max_frame
        self._buffer = bytearray()
        self._error: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as a frame."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._buffer += data

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        message = self.next_message()
        if message is None:
            raise StopIteration
        return message

    def next_message(self) -> dict[str, Any] | None:
        """The next whole map, or None until more bytes come."""
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        if len(buffer) < _LENGTH.size:
            return None
        (length,) = _LENGTH.unpack_from(buffer)
        if length > self.max_frame:
            # Checked before waiting for the body: nothing is ever buffered for a hostile length
            # beyond what the peer actually sent.
            self._error = FrameTooLarge(
                f"frame of {length} bytes exceeds the limit of {self.max_frame}"
            )
            raise self._error
        end = _LENGTH.size + length
        if len(buffer) < end:
            return None
        body = memoryview(buffer)[_LENGTH.size : end]
        try:
            message = _decode_map(body)
        except RemoteProtocolError as exc:
            self._error = exc
            raise
        finally:
            body.release()
        del buffer[:end]
        return message


def _decode_map(body: memoryview) -> dict[str, Any]:
    if not body:
        raise RemoteProtocolError("empty frame")
    # cborutil's decoder, not cbor2: it never allocates from an announced length, and every
    # data item takes at least one byte, so a budget of the frame's length is never in the way.
    try:
        value, end = decode_item(body, 0, len(body), DecodeBudget(len(body) + 1, _MAX_DEPTH))
    except CborError as exc:
        raise RemoteProtocolError(f"undecodable CBOR in a frame: {exc}") from None
    if end != len(body):
        raise RemoteProtocolError(f"{len(body) - end} stray bytes after the map in a frame")
    if not isinstance(value, dict):
        raise RemoteProtocolError(f"a frame holds a CBOR {_kind(value)}, not a map")
    for key in value:
        if not isinstance(key, str):
            raise RemoteProtocolError(f"a map key is a CBOR {_kind(key)}, not text")
    return value


def _kind(value: object) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, Undefined):
        return "simple value"
    if isinstance(value, Tagged):
        return "tag"
    return {
        int: "integer",
        float: "float",
        bytes: "byte string",
        str: "text string",
        list: "array",
    }.get(type(value), type(value).__name__)


def error_answer(request_id: object, code: str, message: str) -> dict[str, Any]:
    """The answer that reports ``code`` with a one-line ``message``."""
    line = " ".join(message.split()) or code
    return {"id": request_id, "ok": False, "error": line, "code": code}


_MISSING: Final = object()


def field(
    message: Mapping[str, Any], name: str, kind: type | tuple[type, ...], default: Any = _MISSING
) -> Any:
    """``message[name]`` checked to be of ``kind`` (``bool`` is not an ``int`` here; an
    ``int`` must not be negative, since every integer of the protocol is unsigned).
    A missing field takes ``default``, or raises a ``bad_request`` :class:`ApiError` naming
    the field when there is none, as does a field of the wrong type."""
    value = message.get(name, _MISSING)
    if value is _MISSING or (value is None and default is not _MISSING):
        if default is _MISSING:
            raise ApiError(f"field {name!r} is missing", "bad_request")
        return default
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if ok and isinstance(value, int) and not isinstance(value, bool) and value < 0:
        raise ApiError(f"field {name!r} must not be negative", "bad_request")
    if not ok:
        wanted = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        raise ApiError(f"field {name!r} must be {wanted}", "bad_request")
    return value


_TYPE_NAMES: Final[dict[type, str]] = {
    str: "text",
    bytes: "bytes",
    int: "an unsigned integer",
    bool: "true or false",
    list: "an array",
    dict: "a map",
    float: "a number",
}
