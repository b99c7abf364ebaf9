"""Encoding and bounded decoding of BPv6 bundles (RFC 5050 section 4, RFC 6260).

Wire layout, all integers SDNVs unless noted::

    primary:    version (1 byte, 6) | flags | block length | 4 x (scheme offset, SSP offset)
                for destination, source, report-to, custodian | creation time | sequence |
                lifetime | dictionary length | dictionary | [fragment offset | total ADU length]
    canonical:  type (1 byte) | flags | [EID reference count | count x (scheme, SSP offset)]
                | block length | data

The decoder never trusts a length: each one is checked against the bytes that remain before
anything is sliced, so hostile input fails in time linear in its size and allocates nothing
it announces. Every failure is a :class:`~dtncloud.errors.BundleDecodeError`.
"""

from __future__ import annotations

from dataclasses import replace

from dtncloud.bpv6.bundle import Bundle, CanonicalBlock, validity_problems
from dtncloud.bpv6.dictionary import (
    DictionaryBuilder,
    DictionaryReader,
    cbhe_eid,
    cbhe_numbers,
)
from dtncloud.bpv6.flags import BlockFlag, BundleFlag
from dtncloud.bpv6.sdnv import ByteReader, encode_sdnv
from dtncloud.errors import (
    BundleDecodeError,
    BundleEncodeError,
    BundleTooLarge,
    InvalidBundle,
)

__all__ = ["DEFAULT_MAX_BLOCKS", "DEFAULT_MAX_SIZE", "VERSION", "decode_bundle", "encode_bundle"]

#: The primary block's version byte for RFC 5050 bundles.
VERSION = 6
#: Default limit on the encoded size of a bundle that :func:`decode_bundle` accepts.
DEFAULT_MAX_SIZE = 64 * 1024 * 1024
#: Default limit on the number of canonical blocks (payload included).
DEFAULT_MAX_BLOCKS = 64

_PRIMARY_EIDS = ("destination", "source", "report_to", "custodian")
_EID_BUDGET_SLACK = 64 * 1024
_BPV7_START = 0x9F  # a CBOR indefinite-length array: what every BPv7 bundle begins with


# -- encoding ------------------------------------------------------------------------------


def _sdnv(value: int, what: str) -> bytes:
    try:
        return encode_sdnv(value)
    except BundleEncodeError as exc:
        raise BundleEncodeError(f"{what}: {exc}") from None


def _encode_block(
    block: CanonicalBlock, last: bool, dictionary: DictionaryBuilder | None, validate: bool
) -> bytes:
    what = f"block type {block.block_type}"
    if not isinstance(block.block_type, int) or not 0 <= block.block_type <= 255:
        raise BundleEncodeError(f"{what}: a BPv6 block type is one byte (0-255)")
    flags = int(block.flags)
    if validate and flags & BlockFlag.LAST_BLOCK and not last:
        raise BundleEncodeError(f"{what}: only the encoder sets the last-block flag")
    if last:
        flags |= BlockFlag.LAST_BLOCK
    parts = [bytes((block.block_type,)), _sdnv(flags, f"{what} flags")]
    if flags & BlockFlag.HAS_EID_REFERENCES:
        parts.append(_sdnv(len(block.eid_references), f"{what} EID reference count"))
        if block.eid_references:
            if dictionary is None:
                raise BundleEncodeError(f"{what}: EID references need a dictionary, not CBHE")
            for eid in block.eid_references:
                scheme, ssp = dictionary.add(eid, f"{what} EID reference")
                parts += (encode_sdnv(scheme), encode_sdnv(ssp))
    elif block.eid_references:
        raise BundleEncodeError(f"{what}: EID references need the has-EID-references flag")
    parts += (_sdnv(len(block.data), f"{what} length"), block.data)
    return b"".join(parts)


def _primary_offsets(bundle: Bundle, dictionary: DictionaryBuilder | None) -> list[bytes]:
    out: list[bytes] = []
    for name in _PRIMARY_EIDS:
        eid: str = getattr(bundle, name)
        if dictionary is not None:
            pair = dictionary.add(eid, name)
        else:
            numbers = cbhe_numbers(eid) if isinstance(eid, str) else None
            if numbers is None:
                raise BundleEncodeError(
                    f"{name}: CBHE carries only canonical ipn:N.S EIDs and dtn:none, not {eid!r}"
                )
            pair = numbers
        out += (_sdnv(pair[0], f"{name} scheme offset"), _sdnv(pair[1], f"{name} SSP offset"))
    return out


def encode_bundle(bundle: Bundle, *, validate: bool = True) -> bytes:
    """Encode ``bundle`` in the RFC 5050 wire format.

    The dictionary holds each distinct scheme and SSP string once (or is empty under CBHE),
    every SDNV is minimal, and the last block gets the last-block flag. With ``validate``
    (the default) a bundle that breaks an RFC 5050 rule (see
    :func:`~dtncloud.bpv6.validity_problems`) is refused; ``validate=False`` writes the
    fields as given, for tests that need invalid bundles. Raises
    :class:`~dtncloud.errors.BundleEncodeError`.
    """
    if validate:
        problems = validity_problems(bundle)
        if problems:
            raise BundleEncodeError("; ".join(problems))
    if not bundle.blocks:
        raise BundleEncodeError("a bundle needs at least one canonical block")
    dictionary = None if bundle.cbhe else DictionaryBuilder()
    offsets = _primary_offsets(bundle, dictionary)
    last = len(bundle.blocks) - 1
    blocks = [
        _encode_block(block, i == last, dictionary, validate)
        for i, block in enumerate(bundle.blocks)
    ]
    dictionary_bytes = b"" if dictionary is None else dictionary.encode()
    body = [
        *offsets,
        _sdnv(bundle.creation_time, "creation time"),
        _sdnv(bundle.sequence, "sequence number"),
        _sdnv(bundle.lifetime, "lifetime"),
        encode_sdnv(len(dictionary_bytes)),
        dictionary_bytes,
    ]
    offset, total = bundle.fragment_offset, bundle.total_adu_length
    if (offset is None) != (total is None):
        raise BundleEncodeError("fragment offset and total ADU length go together")
    if offset is not None and total is not None:
        body += (_sdnv(offset, "fragment offset"), _sdnv(total, "total ADU length"))
    primary_body = b"".join(body)
    head = (
        bytes((VERSION,))
        + _sdnv(int(bundle.flags), "bundle flags")
        + encode_sdnv(len(primary_body))
    )
    return b"".join((head, primary_body, *blocks))


# -- decoding ------------------------------------------------------------------------------


def _decode_primary(reader: ByteReader, data: bytes) -> tuple[Bundle, DictionaryReader | None]:
    """Decode the primary block into a bundle with no blocks yet, plus its dictionary."""
    version = reader.byte("version")
    if version != VERSION:
        hint = " (this looks like a BPv7 bundle)" if version == _BPV7_START else ""
        raise InvalidBundle(f"primary block version is {version}, not {VERSION}{hint}")
    flags = BundleFlag(reader.sdnv("bundle flags"))
    length = reader.sdnv("primary block length")
    if length > reader.remaining:
        raise BundleDecodeError(
            f"primary block length {length} exceeds the {reader.remaining} bytes that remain"
        )
    end = reader.pos + length
    body = ByteReader(data, reader.pos, end)
    pairs = [
        (body.sdnv(f"{name} scheme offset"), body.sdnv(f"{name} SSP offset"))
        for name in _PRIMARY_EIDS
    ]
    creation_time = body.sdnv("creation time")
    sequence = body.sdnv("sequence number")
    lifetime = body.sdnv("lifetime")
    dictionary = body.take(body.sdnv("dictionary length"), "dictionary")
    fragment_offset = total_adu_length = None
    if flags & BundleFlag.IS_FRAGMENT:
        fragment_offset = body.sdnv("fragment offset")
        total_adu_length = body.sdnv("total ADU length")
    if not body.at_end():
        raise BundleDecodeError(
            f"primary block length {length} leaves {body.remaining} bytes unread"
        )
    reader.pos = end
    # Honest bundles name few distinct EIDs, each built from strings that are in the input;
    # twice the input plus some slack covers them and stops a dictionary-pairing blow-up.
    budget = 2 * len(data) + _EID_BUDGET_SLACK
    lookup = DictionaryReader(dictionary, budget) if dictionary else None
    if lookup is not None:
        eids = [lookup.eid(s, p, n) for n, (s, p) in zip(_PRIMARY_EIDS, pairs, strict=True)]
    else:
        # RFC 6260: an empty dictionary means the offsets are ipn node and service numbers.
        eids = [cbhe_eid(node, service) for node, service in pairs]
    bundle = Bundle(
        flags=flags,
        destination=eids[0],
        source=eids[1],
        report_to=eids[2],
        custodian=eids[3],
        creation_time=creation_time,
        sequence=sequence,
        lifetime=lifetime,
        blocks=(),
        fragment_offset=fragment_offset,
        total_adu_length=total_adu_length,
        cbhe=lookup is None,
    )
    return bundle, lookup


def _decode_block(
    reader: ByteReader, lookup: DictionaryReader | None, index: int
) -> tuple[CanonicalBlock, bool]:
    what = f"block {index}"
    block_type = reader.byte(f"{what} type")
    what = f"block {index} (type {block_type})"
    flags = reader.sdnv(f"{what} flags")
    references: list[str] = []
    if flags & BlockFlag.HAS_EID_REFERENCES:
        count = reader.sdnv(f"{what} EID reference count")
        # Each reference takes at least two bytes: refuse an impossible count before looping.
        if count > reader.remaining // 2:
            raise BundleDecodeError(
                f"{what}: {count} EID references cannot fit in {reader.remaining} bytes"
            )
        if count and lookup is None:
            raise BundleDecodeError(
                f"{what}: has EID references but the bundle has no dictionary (CBHE)"
            )
        if lookup is not None:
            # Messages built once, not per reference: a block may carry many references.
            ref_what = f"{what} EID reference"
            scheme_what, ssp_what = f"{ref_what} scheme offset", f"{ref_what} SSP offset"
            for _ in range(count):
                scheme = reader.sdnv(scheme_what)
                ssp = reader.sdnv(ssp_what)
                references.append(lookup.eid(scheme, ssp, ref_what))
    data = reader.take(reader.sdnv(f"{what} length"), f"{what} data")
    last = bool(flags & BlockFlag.LAST_BLOCK)
    block = CanonicalBlock(
        block_type, data, BlockFlag(flags & ~int(BlockFlag.LAST_BLOCK)), tuple(references)
    )
    return block, last


def decode_bundle(
    data: bytes | bytearray | memoryview,
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    max_blocks: int = DEFAULT_MAX_BLOCKS,
) -> Bundle:
    """Decode one complete RFC 5050 bundle and check it against RFC 5050's validity rules.

    ``data`` must hold exactly one bundle: bytes after the block carrying the last-block flag
    are an error. Raises :class:`~dtncloud.errors.BundleTooLarge` (reason 4, depleted
    storage) when ``data`` is longer than ``max_size`` or has more than ``max_blocks``
    canonical blocks, :class:`~dtncloud.errors.InvalidBundle` (reason 8) for a bundle that
    is well formed but breaks a rule, and :class:`~dtncloud.errors.BundleDecodeError`
    (reason 8, block unintelligible) or its subclass
    :class:`~dtncloud.bpv6.SdnvError` for malformed bytes.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"decode_bundle() needs bytes, not {type(data).__name__}")
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size > max_size:
        raise BundleTooLarge(f"bundle of {size} bytes exceeds the limit of {max_size}")
    buf = bytes(data)
    reader = ByteReader(buf)
    primary, lookup = _decode_primary(reader, buf)
    blocks: list[CanonicalBlock] = []
    while True:
        if reader.at_end():
            raise BundleDecodeError(
                f"data ends after {len(blocks)} blocks without one marked as the last block"
            )
        if len(blocks) >= max_blocks:
            raise BundleTooLarge(f"bundle has more than {max_blocks} blocks")
        block, last = _decode_block(reader, lookup, len(blocks))
        blocks.append(block)
        if last:
            break
    if not reader.at_end():
        raise BundleDecodeError(
            f"{reader.remaining} bytes follow the block marked as the last block"
        )
    bundle = replace(primary, blocks=tuple(blocks))
    problems = validity_problems(bundle)
    if problems:
        raise InvalidBundle("; ".join(problems))
    return bundle
