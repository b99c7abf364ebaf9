"""Reading a stick at the start of a sync: every writer's manifest, checked, and what is
there that no trusted manifest accounts for. Blocking; run in a worker thread."""

from __future__ import annotations

from dataclasses import dataclass, field

from dtncloud.mule.keys import NodeKey, TrustedKeys
from dtncloud.mule.manifest import Manifest, ManifestError, decode_manifest
from dtncloud.mule.plan import node_dir_name
from dtncloud.mule.report import Skipped
from dtncloud.mule.stick import NODES, NodeDir, Stick

__all__ = ["Survey", "survey"]


@dataclass
class Survey:
    """A stick as one node found it."""

    own: Manifest
    own_dir: NodeDir
    #: False when this node's own manifest was there but could not be believed
    own_valid: bool
    #: other writers' directories with a manifest that verified, by node ID
    others: dict[str, tuple[NodeDir, Manifest]] = field(default_factory=dict)
    problems: list[Skipped] = field(default_factory=list)

    @property
    def manifests(self) -> dict[str, Manifest]:
        """Every manifest that counts, this node's own included, by node ID."""
        found = {node: manifest for node, (_, manifest) in self.others.items()}
        found[self.own.node] = self.own
        return found


def _describe(error: ManifestError) -> str:
    what = {
        "corrupt": "manifest damaged",
        "unsigned": "manifest not signed",
        "unknown_key": "manifest from an untrusted node",
        "bad_signature": "manifest signature invalid",
        "wrong_node": "manifest in the wrong directory",
    }.get(error.kind, "manifest rejected")
    return f"{what} ({error})"


def survey(stick: Stick, trusted: TrustedKeys, node_id: str, key: NodeKey) -> Survey:
    """Read and check every manifest on ``stick`` (whose layout must exist)."""
    own_name = node_dir_name(node_id)
    found, strays = stick.scan()
    own_dir = next((d for d in found if d.name == own_name), None) or NodeDir(
        own_name, stick.node_path(own_name)
    )
    result = Survey(Manifest(node_id, key.public_hex), own_dir, own_valid=True)
    for stray in strays:
        result.problems.append(Skipped(stray, "not part of the mule; ignored"))
    for directory in found:
        where = f"{NODES}/{directory.name}"
        for name in directory.strays:
            result.problems.append(Skipped(f"{where}/{name}", "not a mule file; ignored"))
        if directory.name == own_name:
            if directory.manifest is not None:
                try:
                    result.own = decode_manifest(directory.manifest, trusted, expect_node=node_id)
                except ManifestError as exc:
                    result.own_valid = False
                    result.problems.append(
                        Skipped(f"{where}/manifest", f"this node's {_describe(exc)}; replaced")
                    )
            continue
        _other(result, directory, trusted, where)
    return result


def _other(result: Survey, directory: NodeDir, trusted: TrustedKeys, where: str) -> None:
    files = len(directory.bundles)
    if directory.manifest is None:
        if files:
            result.problems.append(
                Skipped(where, f"no manifest: {files} files skipped (not written by a node)")
            )
        return
    try:
        manifest = decode_manifest(directory.manifest, trusted)
    except ManifestError as exc:
        result.problems.append(Skipped(where, f"{_describe(exc)}: {files} files skipped"))
        return
    if node_dir_name(manifest.node) != directory.name:
        result.problems.append(
            Skipped(where, f"manifest of {manifest.node} in the wrong directory: skipped")
        )
        return
    if manifest.node in result.others:  # cannot happen: one directory name per node
        return
    for name in sorted(set(directory.bundles) - set(manifest.bundles)):
        result.problems.append(
            Skipped(
                f"{where}/{name}",
                f"not listed in {manifest.node}'s manifest (a write cut short, or added "
                "by someone else); ignored",
            )
        )
    result.others[manifest.node] = (directory, manifest)
