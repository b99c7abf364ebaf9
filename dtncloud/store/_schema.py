"""SqliteStore's schema and the mapping between BundleMeta and table rows.

Integers: DTN times, sequence numbers and fragment offsets are CBOR unsigned integers, so a
received bundle may carry values up to 2**64 - 1, past SQLite's signed 64-bit INTEGER. Every
integer column but ``size`` is declared without a type (no affinity, so SQLite never converts
what it is given) and a value outside the 64-bit range is stored as its decimal text: every
int round-trips, as it does in MemoryStore.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dtncloud.store.base import BundleMeta, Retention

__all__ = [
    "APPLICATION_ID",
    "CREATE_SCHEMA",
    "INSERT_BUNDLE",
    "META_COLUMNS",
    "SCHEMA_VERSION",
    "UPDATE_BUNDLE",
    "meta_from_row",
    "meta_to_row",
    "update_params",
]

#: ``PRAGMA user_version``: bump it, with a migration, whenever the schema changes.
SCHEMA_VERSION = 1
#: ``PRAGMA application_id`` ("DTNC"): tells a dtncloud store from another SQLite database.
APPLICATION_ID = 0x44544E43

# The payload is the last column, after ``file``: reading the metadata of a row then never
# touches the overflow pages that hold a large inline payload. ``pk`` is an alias of the rowid,
# so that it stays stable (scan pages through the table by it).
CREATE_SCHEMA = f"""
CREATE TABLE bundles (
    pk INTEGER PRIMARY KEY,
    bundle_id TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    destination TEXT NOT NULL,
    creation_time NOT NULL,
    sequence NOT NULL,
    expires_at NOT NULL,
    size INTEGER NOT NULL,
    received_at NOT NULL,
    retention NOT NULL,
    protocol NOT NULL,
    fragment_offset,
    total_length,
    previous_node TEXT,
    flags NOT NULL,
    report_to TEXT,
    custody BLOB NOT NULL,
    routing BLOB NOT NULL,
    -- payload file under bundles/, or NULL when the payload is inline in ``data``
    file TEXT,
    data BLOB,
    CHECK ((file IS NULL) <> (data IS NULL))
);
CREATE TABLE state (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL);
PRAGMA application_id = {APPLICATION_ID};
PRAGMA user_version = {SCHEMA_VERSION};
"""

META_COLUMNS = (
    "bundle_id",
    "source",
    "destination",
    "creation_time",
    "sequence",
    "expires_at",
    "size",
    "received_at",
    "retention",
    "protocol",
    "fragment_offset",
    "total_length",
    "previous_node",
    "flags",
    "report_to",
    "custody",
    "routing",
)
_WIDE = frozenset(
    {"creation_time", "sequence", "expires_at", "received_at", "retention", "protocol", "flags"}
)
_WIDE_OPTIONAL = frozenset({"fragment_offset", "total_length"})

INSERT_BUNDLE = (
    f"INSERT INTO bundles ({', '.join(META_COLUMNS)}, file, data) "
    f"VALUES ({', '.join('?' * (len(META_COLUMNS) + 2))})"
)
# Everything but the key and the size (which update may not change), keyed by bundle_id last.
UPDATE_BUNDLE = (
    "UPDATE bundles SET "
    + ", ".join(f"{c} = ?" for c in META_COLUMNS if c not in ("bundle_id", "size"))
    + " WHERE bundle_id = ?"
)

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1


def _wide_to_db(value: int) -> int | str:
    return value if _INT64_MIN <= value <= _INT64_MAX else str(value)


def _wide_from_db(value: int | str) -> int:
    return int(value) if isinstance(value, str) else value


def meta_to_row(meta: BundleMeta) -> tuple[Any, ...]:
    """The META_COLUMNS values of ``meta``, ready to bind."""
    row: list[Any] = []
    for column in META_COLUMNS:
        value = getattr(meta, column)
        if column in _WIDE or (column in _WIDE_OPTIONAL and value is not None):
            # int() turns a Retention flag into a plain int for the driver.
            value = _wide_to_db(int(value))
        row.append(value)
    return tuple(row)


def update_params(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """UPDATE_BUNDLE's parameters from a meta_to_row() row."""
    values = [v for c, v in zip(META_COLUMNS, row, strict=True) if c not in ("bundle_id", "size")]
    return (*values, row[0])


def meta_from_row(row: Sequence[Any]) -> BundleMeta:
    """A BundleMeta from the META_COLUMNS values of a row."""
    values = dict(zip(META_COLUMNS, row, strict=True))
    for column in _WIDE:
        values[column] = _wide_from_db(values[column])
    for column in _WIDE_OPTIONAL:
        if values[column] is not None:
            values[column] = _wide_from_db(values[column])
    values["retention"] = Retention(values["retention"])
    return BundleMeta(**values)
