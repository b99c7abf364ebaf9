"""What a mule sync did: :class:`SyncReport`, kept up to date while the sync runs (so that
the command line can show progress) and returned at the end."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["PHASES", "Skipped", "SyncReport", "format_size"]

#: The phases of a sync, in order; ``failed`` ends a sync that could not go on.
PHASES = ("starting", "reading", "importing", "pruning", "exporting", "done", "failed")


def format_size(size: int) -> str:
    """``1536`` -> ``1.5 KiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file (path relative to the mule directory) or directory left alone, and why."""

    path: str
    reason: str


@dataclass(slots=True)
class SyncReport:
    """Counts of what moved each way. In a dry run the counts say what *would* move."""

    path: str
    dry_run: bool = False
    phase: str = "starting"
    #: bundles taken into the node from the stick
    imported: int = 0
    imported_bytes: int = 0
    #: bundles written onto the stick (or already there, see ``already``)
    exported: int = 0
    exported_bytes: int = 0
    #: of those exported, bundles the stick already carried (nothing written)
    already: int = 0
    #: bundles the node offered that did not fit on the stick: they stay at the node
    left: int = 0
    left_bytes: int = 0
    #: copies removed from the stick (expired, taken, delivered) and junk cleaned up
    pruned: int = 0
    pruned_bytes: int = 0
    #: bundles on the stick checked and found intact but not imported (taken before, or
    #: their job is done)
    seen: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    error: str | None = None
    duration_ms: int = 0

    @property
    def done(self) -> bool:
        return self.phase in ("done", "failed")

    def skip(self, path: str, reason: str) -> None:
        self.skipped.append(Skipped(path, reason))

    def to_dict(self) -> dict[str, Any]:
        """Plain values only (for the API's CBOR and for JSON)."""
        result = asdict(self)
        result["skipped"] = [{"path": s.path, "reason": s.reason} for s in self.skipped]
        return result

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyncReport:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known and k != "skipped"}
        report = cls(**values)
        for item in data.get("skipped") or ():
            report.skip(str(item.get("path", "")), str(item.get("reason", "")))
        return report

    def progress_line(self) -> str:
        """One line for a progress display."""
        return (
            f"{self.phase}: imported {self.imported}, exported {self.exported} "
            f"({format_size(self.exported_bytes)}), pruned {self.pruned}"
        )

    def summary(self) -> list[str]:
        """The lines ``dtncloud mule sync`` prints."""
        lines = [f"mule {self.path}{' (dry run: nothing changed)' if self.dry_run else ''}"]
        size = format_size
        if self.dry_run:
            lines.append(f"  would export {self.exported} bundles / {size(self.exported_bytes)}")
        else:
            already = f" ({self.already} already on the stick)" if self.already else ""
            lines.append(
                f"  exported {self.exported} bundles / {size(self.exported_bytes)}{already}"
            )
        if self.left:
            lines.append(
                f"  left at the node (no room on the stick): {self.left} bundles / "
                f"{size(self.left_bytes)}"
            )
        verb = "would import" if self.dry_run else "imported"
        lines.append(f"  {verb} {self.imported} bundles / {size(self.imported_bytes)}")
        verb = "would prune" if self.dry_run else "pruned"
        lines.append(f"  {verb} {self.pruned} files / {size(self.pruned_bytes)}")
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)}:")
            lines.extend(f"    {s.path}: {s.reason}" for s in self.skipped)
        if self.error:
            lines.append(f"  failed: {self.error}")
        return lines
