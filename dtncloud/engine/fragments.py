"""Fragments kept for reassembly at their destination (RFC 9171 section 5.9).

The book knows only IDs and ranges: the fragments' bytes stay in the store until the
shell puts them together (:class:`~dtncloud.engine.actions.Reassemble`). A fragment's bundle
ID carries its offset and payload length (``.../OFFSET+LENGTH``), so the book can be rebuilt
from the store's metadata after a restart.
"""

from __future__ import annotations

__all__ = ["FragmentBook", "fragment_range", "whole_id"]


def whole_id(bundle_id: str) -> str:
    """The ID of the bundle a fragment ID belongs to (a whole bundle's ID is unchanged)."""
    slash = bundle_id.rfind("/")
    return bundle_id[:slash] if slash > bundle_id.rfind("@") else bundle_id


def fragment_range(bundle_id: str) -> tuple[int, int]:
    """(offset, payload length) of a fragment ID."""
    offset, _, length = bundle_id[bundle_id.rfind("/") + 1 :].partition("+")
    return int(offset), int(length)


class FragmentBook:
    """Which fragments of which bundles this node holds, and whether they cover them."""

    def __init__(self) -> None:
        # whole bundle ID -> fragment ID -> (offset, length, total ADU length)
        self._parts: dict[str, dict[str, tuple[int, int, int]]] = {}
        self._busy: set[str] = set()

    def add(self, fragment_id: str, total_length: int) -> str:
        """Note a stored fragment; returns the ID of its whole bundle."""
        offset, length = fragment_range(fragment_id)
        whole = whole_id(fragment_id)
        self._parts.setdefault(whole, {})[fragment_id] = (offset, length, total_length)
        return whole

    def ready(self, whole: str) -> tuple[str, ...] | None:
        """The fragment IDs to put together if they now cover the whole payload and no
        reassembly of them is under way (one then starts); else None."""
        parts = self._parts.get(whole)
        if not parts or whole in self._busy:
            return None
        total = next(iter(parts.values()))[2]
        covered = 0
        for offset, length, _ in sorted(parts.values()):
            if offset > covered:
                return None
            covered = max(covered, offset + length)
        if covered < total:
            return None
        self._busy.add(whole)
        return tuple(parts)

    def busy(self, whole: str) -> bool:
        """Whether a reassembly of ``whole`` is under way."""
        return whole in self._busy

    def finish(self, whole: str) -> list[str]:
        """Forget ``whole``'s fragments (reassembled, or given up); returns their IDs."""
        self._busy.discard(whole)
        return list(self._parts.pop(whole, {}))

    def discard(self, fragment_id: str) -> None:
        """A fragment is gone (expired) before it could be used."""
        whole = whole_id(fragment_id)
        parts = self._parts.get(whole)
        if parts is not None:
            parts.pop(fragment_id, None)
            if not parts and whole not in self._busy:
                del self._parts[whole]

    def wholes(self) -> list[str]:
        return list(self._parts)
