"""BPv7 fragmentation and reassembly (RFC 9171 section 5.8 and 5.9).

A fragment is a bundle whose primary block carries the is-fragment flag, the offset of its
payload within the original ADU and the length of that ADU. :func:`fragment_bundle` splits a
bundle so that every fragment's encoding fits a size limit; :func:`split_at` splits at a given
payload offset (reactive fragmentation). :func:`reassemble` and :class:`FragmentCollector` put
the original bundle back together from fragments in any order, duplicates and overlapping
fragments of other fragmentation episodes included.

Which extension blocks each fragment carries: the first fragment of a split takes every block
of the bundle being split; the others take the blocks flagged
:attr:`~dtncloud.bpv7.BlockFlag.REPLICATE`, plus the bundle age block when the creation time
is 0 (without it they would not be valid bundles). Reassembly takes the extension blocks of
the fragment at offset 0.

>>> from dtncloud.bpv7 import Bundle, encoded_size
>>> bundle = Bundle.create(source="ipn:1.1", destination="ipn:2.1",
...                        payload=bytes(1000), creation_time=755_000_000_000)
>>> fragments = fragment_bundle(bundle, 400)
>>> [encoded_size(f) <= 400 for f in fragments]
[True, True, True]
>>> reassemble(reversed(fragments)) == bundle
True
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from dtncloud.bpv7.blocks import CanonicalBlock, PrimaryBlock
from dtncloud.bpv7.bundle import Bundle, BundleId
from dtncloud.bpv7.encode import encoded_size
from dtncloud.bpv7.flags import BlockFlag, BlockType, BundleFlag
from dtncloud.cborutil import head_len
from dtncloud.errors import FragmentError


class InconsistentFragments(FragmentError):
    """Fragments that cannot belong to one bundle: their primary blocks differ, or they hold
    different bytes for the same part of the payload."""


class MissingFragments(FragmentError):
    """Reassembly ran out of fragments. ``missing`` lists the absent payload byte ranges as
    half-open ``(start, end)`` pairs; ``total_length`` is the length of the whole ADU."""

    def __init__(self, bundle_id: BundleId, missing: list[tuple[int, int]], total_length: int):
        ranges = ", ".join(f"[{start}, {end})" for start, end in missing)
        super().__init__(
            f"cannot reassemble bundle {bundle_id}: payload bytes {ranges} "
            f"of {total_length} are missing"
        )
        self.missing = missing
        self.total_length = total_length


# -- fragmentation ----------------------------------------------------------------------------


def _travels_everywhere(block: CanonicalBlock, creation_time: int) -> bool:
    if block.flags & BlockFlag.REPLICATE:
        return True
    # RFC 9171 4.4.2: a bundle created without a clock must carry its age in every fragment.
    return creation_time == 0 and block.type_code == BlockType.BUNDLE_AGE


def _piece(bundle: Bundle, start: int, end: int, first: bool) -> Bundle:
    """The fragment holding ``bundle``'s payload bytes ``[start, end)``."""
    primary = bundle.primary
    base, total = primary.fragment_offset, primary.total_adu_length
    if base is None or total is None:
        base, total = 0, len(bundle.payload)
    fragment_primary = primary.replace(
        flags=BundleFlag(int(primary.flags) | BundleFlag.IS_FRAGMENT),
        fragment_offset=base + start,
        total_adu_length=total,
    )
    payload = bundle.payload_block
    if first:
        blocks = [b for b in bundle.blocks if b is not payload]
    else:
        blocks = [
            b
            for b in bundle.blocks
            if b is not payload and _travels_everywhere(b, primary.creation_time)
        ]
    blocks.append(payload.with_data(payload.data[start:end]))
    return Bundle(fragment_primary, tuple(blocks))


def _check_may_fragment(bundle: Bundle) -> None:
    if bundle.primary.flags & BundleFlag.MUST_NOT_FRAGMENT:
        raise FragmentError(f"bundle {bundle.id} is flagged must-not-fragment")


def fragment_bundle(
    bundle: Bundle, max_size: int, *, first_fragment_size: int | None = None
) -> list[Bundle]:
    """Split ``bundle`` into fragments whose encodings are at most ``max_size`` bytes.

    ``first_fragment_size``, if given, is the limit for the first fragment instead. A bundle
    that already fits is returned alone and unchanged (even if flagged must-not-fragment).
    A fragment can be fragmented again; offsets stay relative to the original ADU.

    Raises :class:`~dtncloud.errors.FragmentError` if the bundle must not be fragmented, or
    if a limit leaves no room for a single payload byte after a fragment's blocks.
    """
    first_limit = max_size if first_fragment_size is None else first_fragment_size
    size = encoded_size(bundle)
    if size <= first_limit:
        return [bundle]
    _check_may_fragment(bundle)
    payload_length = len(bundle.payload)
    if payload_length < 2:
        raise FragmentError(
            f"bundle {bundle.id} ({size} bytes) exceeds the limit of {first_limit} bytes and its "
            f"{payload_length}-byte payload cannot be split"
        )
    fragments: list[Bundle] = []
    start = 0
    limit = first_limit
    while start < payload_length:
        first = not fragments
        # Everything but the payload bytes and their length head (1 byte for an empty payload).
        overhead = encoded_size(_piece(bundle, start, start, first)) - 1
        room = limit - overhead
        take = min(payload_length - start, room - 1)
        while take > 0 and take + head_len(take) > room:
            take -= 1
        if take <= 0:
            which = (
                "first_fragment_size" if first and first_fragment_size is not None else "max_size"
            )
            raise FragmentError(
                f"{which} {limit} is too small: fragment {len(fragments) + 1} of bundle "
                f"{bundle.id} needs {overhead + 1} bytes besides its payload, so at least "
                f"{overhead + 2} bytes to carry one payload byte"
            )
        fragments.append(_piece(bundle, start, start + take, first))
        start += take
        limit = max_size
    return fragments


def split_at(bundle: Bundle, payload_offset: int) -> tuple[Bundle, Bundle]:
    """Split ``bundle`` into two fragments at ``payload_offset`` (0 < offset < payload length):
    what a partial transfer delivered and what remains to send (reactive fragmentation)."""
    _check_may_fragment(bundle)
    length = len(bundle.payload)
    if not 0 < payload_offset < length:
        raise FragmentError(
            f"cannot split a {length}-byte payload at offset {payload_offset} "
            f"(0 < offset < {length} needed)"
        )
    return _piece(bundle, 0, payload_offset, True), _piece(bundle, payload_offset, length, False)


# -- reassembly -------------------------------------------------------------------------------

# Primary block fields that every fragment of one bundle shares (the primary block is
# immutable, RFC 9171 4.3.1). The CRC type is not among them: it does not change the bundle.
_SHARED_FIELDS = (
    "source",
    "creation_time",
    "sequence",
    "total_adu_length",
    "destination",
    "report_to",
    "lifetime",
    "flags",
)


class FragmentCollector:
    """Reassembles one bundle from its fragments, added one at a time in any order.

    Pure: no clock (expiring an unfinished collection is the caller's business). Each distinct
    payload byte is stored once however often it arrives, so memory stays at about the size of
    the original payload. ``max_length`` refuses bundles whose total ADU length is larger.
    """

    __slots__ = ("_chunks", "_head", "_held", "_max_length", "_reference", "_result", "_starts")

    def __init__(self, *, max_length: int | None = None) -> None:
        self._max_length = max_length
        self._reference: PrimaryBlock | None = None
        self._head: Bundle | None = None  # the first fragment at offset 0, payload emptied
        self._starts: list[int] = []  # disjoint stored byte ranges, sorted by start
        self._chunks: list[bytes] = []
        self._held = 0
        self._result: Bundle | None = None

    @property
    def bundle_id(self) -> BundleId | None:
        """The ID of the bundle being reassembled (None before the first fragment)."""
        ref = self._reference
        return (
            None if ref is None else BundleId(ref.source.node_id, ref.creation_time, ref.sequence)
        )

    @property
    def total_length(self) -> int | None:
        """The length of the whole ADU (None before the first fragment)."""
        return None if self._reference is None else self._reference.total_adu_length

    @property
    def received_length(self) -> int:
        """How many distinct payload bytes are held."""
        return self._held

    @property
    def is_complete(self) -> bool:
        return self._result is not None

    @property
    def result(self) -> Bundle | None:
        """The reassembled bundle once complete."""
        return self._result

    def missing(self) -> list[tuple[int, int]]:
        """The payload byte ranges not yet received, as half-open ``(start, end)`` pairs
        (empty before the first fragment, as the length is not known yet)."""
        total = self.total_length
        if total is None:
            return []
        gaps = []
        position = 0
        for start, chunk in zip(self._starts, self._chunks, strict=True):
            if start > position:
                gaps.append((position, start))
            position = start + len(chunk)
        if position < total:
            gaps.append((position, total))
        return gaps

    def add(self, fragment: Bundle) -> Bundle | None:
        """Add a fragment; return the whole bundle if this fragment completes it, else None.

        Raises :class:`~dtncloud.errors.FragmentError` for a bundle that is not a fragment
        or lies outside its own ADU, and :class:`InconsistentFragments` for one that cannot
        belong with those already added. A refused fragment leaves the collector unchanged.
        """
        primary = fragment.primary
        offset, total = primary.fragment_offset, primary.total_adu_length
        if offset is None or total is None or not primary.flags & BundleFlag.IS_FRAGMENT:
            raise FragmentError(f"bundle {fragment.id} is not a fragment")
        payload = fragment.payload
        end = offset + len(payload)
        if end > total:
            raise FragmentError(
                f"fragment {fragment.id} covers bytes up to {end}, beyond the ADU's {total}"
            )
        if self._max_length is not None and total > self._max_length:
            raise FragmentError(
                f"bundle {fragment.id.whole} is {total} bytes long, over the limit of "
                f"{self._max_length}"
            )
        if self._reference is not None:
            self._check_consistent(fragment)
        new_parts = self._new_parts(offset, payload)

        # Every check has passed: from here on nothing raises.
        if self._reference is None:
            self._reference = primary.replace(fragment_offset=None)
        if offset == 0 and self._head is None:
            self._head = fragment.replace_block(fragment.payload_block.with_data(b""))
        for start, data in new_parts:
            index = bisect_left(self._starts, start)
            self._starts.insert(index, start)
            self._chunks.insert(index, data)
            self._held += len(data)
        if self._result is None and self._held == total:
            return self._finish()
        return None

    def _check_consistent(self, fragment: Bundle) -> None:
        reference = self._reference
        assert reference is not None
        primary = fragment.primary
        for name in _SHARED_FIELDS:
            mine, theirs = getattr(reference, name), getattr(primary, name)
            if mine != theirs:
                raise InconsistentFragments(
                    f"fragment {fragment.id} does not belong to bundle {self.bundle_id}: "
                    f"its {name.replace('_', ' ')} is {theirs}, not {mine}"
                )

    def _new_parts(self, offset: int, payload: bytes) -> list[tuple[int, bytes]]:
        """The parts of ``payload`` (at ``offset``) not held yet; checks the parts that are."""
        end = offset + len(payload)
        view = memoryview(payload)
        parts = []
        position = offset
        index = max(bisect_right(self._starts, offset) - 1, 0)
        while index < len(self._starts) and self._starts[index] < end:
            start, chunk = self._starts[index], self._chunks[index]
            index += 1
            stop = start + len(chunk)
            if stop <= offset:
                continue
            lo, hi = max(start, offset), min(stop, end)
            held, given = (
                memoryview(chunk)[lo - start : hi - start],
                view[lo - offset : hi - offset],
            )
            if held != given:
                size = hi - lo
                first = next(i for i in range(size) if held[i] != given[i])
                last = next(i for i in reversed(range(size)) if held[i] != given[i])
                raise InconsistentFragments(
                    f"fragments of bundle {self.bundle_id} hold different bytes in the payload "
                    f"range [{lo + first}, {lo + last + 1})"
                )
            if position < lo:
                parts.append((position, payload[position - offset : lo - offset]))
            position = max(position, hi)
        if position < end:
            parts.append((position, payload[position - offset :]))
        return parts

    def _finish(self) -> Bundle:
        head = self._head
        assert head is not None  # a complete payload starts at offset 0
        payload = b"".join(self._chunks)
        # One chunk now holds everything, shared with the result: no second copy.
        self._starts, self._chunks = [0], [payload]
        primary = head.primary.replace(
            # ~int, not ~BundleFlag: inverting the enum would also clear unknown flag bits.
            flags=BundleFlag(int(head.primary.flags) & ~int(BundleFlag.IS_FRAGMENT)),
            fragment_offset=None,
            total_adu_length=None,
        )
        whole = Bundle(primary, head.blocks)
        self._result = whole.replace_block(head.payload_block.with_data(payload))
        return self._result


def reassemble(fragments: Iterable[Bundle]) -> Bundle:
    """The original bundle, from all its fragments in any order.

    Duplicates and overlapping fragments of different fragmentation episodes are fine as long
    as they agree byte for byte. Raises :class:`MissingFragments` (naming the missing byte
    ranges) if the fragments do not cover the whole payload, :class:`InconsistentFragments`
    if they cannot belong to one bundle, and :class:`~dtncloud.errors.FragmentError` for an
    empty input or a bundle that is not a fragment.
    """
    collector = FragmentCollector()
    for fragment in fragments:
        collector.add(fragment)
    bundle_id, total = collector.bundle_id, collector.total_length
    if bundle_id is None or total is None:
        raise FragmentError("no fragments to reassemble")
    result = collector.result
    if result is None:
        raise MissingFragments(bundle_id, collector.missing(), total)
    return result
