"""Argument checks shared by both stores, so that they accept and refuse exactly the same calls.

A wrong type or a size that does not match the bytes is the caller's mistake, not a storage
failure, so these raise :class:`TypeError` / :class:`ValueError` rather than a
:class:`~dtncloud.errors.StoreError`. Checking types up front also keeps SqliteStore from
storing, say, a float that MemoryStore would hand back unchanged.
"""

from __future__ import annotations

from dtncloud.store.base import BundleMeta

__all__ = ["check_meta", "check_put", "check_state", "check_update_size"]

_STR_FIELDS = ("bundle_id", "source", "destination")
_INT_FIELDS = (
    "creation_time",
    "sequence",
    "expires_at",
    "size",
    "received_at",
    "retention",
    "protocol",
    "flags",
)
_OPTIONAL_INT_FIELDS = ("fragment_offset", "total_length")
_OPTIONAL_STR_FIELDS = ("previous_node", "report_to")
_BYTES_FIELDS = ("custody", "routing")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _plainly_valid(meta: BundleMeta) -> bool:
    """Whether ``meta`` passes :func:`check_meta` by exact types alone: what the engine
    always hands the store, decided with none of the loops of the full check (which runs on
    every bundle stored, thousands of times a second in a simulation)."""
    t = type
    return (
        t(meta) is BundleMeta
        and t(meta.bundle_id) is str
        and t(meta.source) is str
        and t(meta.destination) is str
        and t(meta.creation_time) is int
        and t(meta.sequence) is int
        and t(meta.expires_at) is int
        and t(meta.size) is int
        and t(meta.received_at) is int
        and _is_int(meta.retention)  # a Retention flag, an int subclass
        and t(meta.protocol) is int
        and t(meta.flags) is int
        and (meta.fragment_offset is None or t(meta.fragment_offset) is int)
        and (meta.total_length is None or t(meta.total_length) is int)
        and (meta.previous_node is None or t(meta.previous_node) is str)
        and (meta.report_to is None or t(meta.report_to) is str)
        and t(meta.custody) is bytes
        and t(meta.routing) is bytes
        and meta.size >= 0
    )


def check_meta(meta: BundleMeta) -> None:
    """Raise TypeError unless every field of ``meta`` has its declared type."""
    if _plainly_valid(meta):
        return
    if not isinstance(meta, BundleMeta):
        raise TypeError(f"expected a BundleMeta, got {type(meta).__name__}")
    for name in _STR_FIELDS:
        if not isinstance(getattr(meta, name), str):
            raise TypeError(f"BundleMeta.{name} must be a str")
    for name in _INT_FIELDS:
        if not _is_int(getattr(meta, name)):
            raise TypeError(f"BundleMeta.{name} must be an int")
    for name in _OPTIONAL_INT_FIELDS:
        value = getattr(meta, name)
        if value is not None and not _is_int(value):
            raise TypeError(f"BundleMeta.{name} must be an int or None")
    for name in _OPTIONAL_STR_FIELDS:
        value = getattr(meta, name)
        if value is not None and not isinstance(value, str):
            raise TypeError(f"BundleMeta.{name} must be a str or None")
    for name in _BYTES_FIELDS:
        if not isinstance(getattr(meta, name), bytes):
            raise TypeError(f"BundleMeta.{name} must be bytes")
    if meta.size < 0:
        raise ValueError(f"BundleMeta.size must not be negative, got {meta.size}")


def check_put(meta: BundleMeta, data: bytes) -> bytes:
    """Check the arguments of ``put``; return ``data`` as immutable bytes (a copy of a
    bytearray or memoryview, so later changes by the caller cannot reach the store)."""
    check_meta(meta)
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"bundle data must be bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) != meta.size:
        raise ValueError(
            f"BundleMeta.size is {meta.size} but the data of {meta.bundle_id} is {len(data)} bytes"
        )
    return data


def check_update_size(meta: BundleMeta, stored_size: int) -> None:
    """``update`` may not change the size: the bytes of a stored bundle never change."""
    if meta.size != stored_size:
        raise ValueError(
            f"update of {meta.bundle_id} changes its size from {stored_size} to {meta.size}; "
            "the stored bytes never change, so neither can their size"
        )


def check_state(key: str, value: bytes) -> None:
    if not isinstance(key, str):
        raise TypeError(f"state key must be a str, got {type(key).__name__}")
    if not isinstance(value, bytes):
        raise TypeError(f"state value must be bytes, got {type(value).__name__}")
