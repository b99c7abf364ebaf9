"""Files on a mule stick and the node's mule key: blocking I/O, run in a worker thread by
:mod:`dtncloud.cla.mule`.

Layout of a mule directory (``PATH``)::

    PATH/dtncloud-mule.txt            marker: format version and a note for people
    PATH/keys/<node dir>.pub          each writer's public key line, for operators to copy
    PATH/nodes/<node dir>/manifest    the writer's signed manifest
    PATH/nodes/<node dir>/<32 hex>.bundle   one bundle per file
    PATH/nodes/<node dir>/.tmp-*      a write under way, or one cut short (ignored)

Every file is written to a temporary name, synced, renamed into place and its directory
synced, so a file under its final name is always complete.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from nacl.signing import SigningKey

from dtncloud.errors import ConfigError, ConnectError
from dtncloud.mule.keys import NodeKey, parse_public_key_line, public_key_line
from dtncloud.mule.manifest import MAX_MANIFEST, Entry, is_bundle_file_name

__all__ = [
    "MANIFEST",
    "MARKER",
    "NodeDir",
    "Stick",
    "load_or_create_key",
    "read_trusted_dir",
    "sync_directory",
    "write_atomic",
]

MARKER = "dtncloud-mule.txt"
MARKER_FIRST_LINE = "dtncloud-mule 1"
_MARKER_TEXT = (
    f"{MARKER_FIRST_LINE}\n"
    "This directory is a DTN data mule managed by dtncloud (`dtncloud mule sync`).\n"
    "Do not edit or rename the files in it: each site checks them against signed manifests.\n"
)
NODES = "nodes"
KEYS = "keys"
MANIFEST = "manifest"
TMP_PREFIX = ".tmp-"
_READ_CHUNK = 1 << 20


def sync_directory(path: Path) -> None:
    """fsync a directory so that renames in it survive a power cut. File systems that cannot
    (some FAT drivers, network mounts) are let off: the file data itself was synced."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES):
            raise
    finally:
        os.close(fd)


def write_atomic(directory: Path, name: str, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` as ``directory/name``: a temporary file, synced, renamed, the
    directory synced. Raises OSError (a stick pulled out, a full stick)."""
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(OSError):  # FAT has no modes
            os.chmod(tmp, mode)
        os.replace(tmp, directory / name)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    sync_directory(directory)


@dataclass
class NodeDir:
    """One writer's directory as found on the stick."""

    name: str
    path: Path
    manifest: bytes | None = None
    #: bundle file name -> size in bytes
    bundles: dict[str, int] = field(default_factory=dict)
    tmp: list[str] = field(default_factory=list)
    #: files that are neither bundles, temporary files nor the manifest
    strays: list[str] = field(default_factory=list)


class Stick:
    """A mule directory at ``root`` (on removable media, usually)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.nodes = root / NODES

    def open(self, *, create: bool) -> None:
        """Check that the directory is there and is a mule; with ``create``, make it one
        (marker, ``nodes``, ``keys``). Raises ConnectError when it is missing or foreign."""
        if not self.root.is_dir():
            raise ConnectError(f"{self.root} is not there (is the stick mounted?)")
        marker = self.root / MARKER
        try:
            with marker.open("rb") as stream:
                first = stream.readline(100).decode("ascii", "replace").strip()
        except FileNotFoundError:
            first = None
        except OSError as exc:
            raise ConnectError(f"{marker}: {exc.strerror or exc}") from None
        if first is not None and first != MARKER_FIRST_LINE:
            raise ConnectError(f"{marker}: not a mule of this version ({first!r:.40})")
        if not create:
            return
        if first is None:
            if _entries(self.root):  # never turn someone's files into a mule by mistake
                raise ConnectError(
                    f"{self.root} is not a mule directory and is not empty; "
                    "give an empty directory on the stick (mkdir it once)"
                )
            write_atomic(self.root, MARKER, _MARKER_TEXT.encode("ascii"))
        for directory in (self.nodes, self.root / KEYS):
            directory.mkdir(exist_ok=True)

    def node_path(self, dir_name: str) -> Path:
        return self.nodes / dir_name

    def scan(self) -> tuple[list[NodeDir], list[str]]:
        """Every writer's directory, and the names of other things in ``nodes`` and at the
        top (which a mule never writes there: a stranger's)."""
        strays = [
            entry.name for entry in _entries(self.root) if entry.name not in (MARKER, NODES, KEYS)
        ]
        found = []
        for entry in _entries(self.nodes):
            if not entry.is_dir(follow_symlinks=False):
                strays.append(f"{NODES}/{entry.name}")
                continue
            found.append(self.read_node_dir(entry.name))
        return found, strays

    def read_node_dir(self, dir_name: str) -> NodeDir:
        path = self.nodes / dir_name
        found = NodeDir(dir_name, path)
        for entry in _entries(path):
            name = entry.name
            if name.startswith(TMP_PREFIX):
                found.tmp.append(name)
            elif name == MANIFEST and entry.is_file(follow_symlinks=False):
                found.manifest = _read(path / name, MAX_MANIFEST)
            elif is_bundle_file_name(name) and entry.is_file(follow_symlinks=False):
                found.bundles[name] = entry.stat(follow_symlinks=False).st_size
            else:
                found.strays.append(name)
        return found

    def read_checked(self, path: Path, entry: Entry) -> tuple[bytes | None, str | None]:
        """A bundle file's bytes if they are what ``entry`` says (size and SHA-256), else
        (None, the problem in words)."""
        try:
            data = _read(path, entry.size + 1)
        except FileNotFoundError:
            return None, "missing (listed in the manifest, not on the stick)"
        except OSError as exc:
            return None, f"unreadable: {exc.strerror or exc}"
        if len(data) < entry.size:
            return None, f"truncated: {len(data)} of {entry.size} bytes"
        if len(data) > entry.size:
            return None, f"corrupted: longer than the {entry.size} bytes listed"
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            return None, "corrupted: SHA-256 does not match the manifest"
        return data, None

    def bundle_bytes(self) -> int:
        """Bytes in bundle files, over every writer."""
        total = 0
        for entry in _entries(self.nodes):
            if entry.is_dir(follow_symlinks=False):
                for item in _entries(Path(entry.path)):
                    if is_bundle_file_name(item.name):
                        with contextlib.suppress(OSError):
                            total += item.stat(follow_symlinks=False).st_size
        return total

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def publish_key(self, dir_name: str, line: str) -> None:
        """Leave the node's public key line in ``keys/`` for operators (never trusted from
        there by dtncloud)."""
        target = self.root / KEYS / f"{dir_name}.pub"
        with contextlib.suppress(OSError):
            if target.read_text("ascii") == line:
                return
        write_atomic(self.root / KEYS, f"{dir_name}.pub", line.encode("ascii"))


def remove(path: Path) -> int:
    """Delete a file; its size, or 0 if it was gone already."""
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    return size


def _entries(path: Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as listing:
            return sorted(listing, key=lambda entry: entry.name)
    except FileNotFoundError:
        return []


def _read(path: Path, limit: int) -> bytes:
    chunks = []
    left = limit
    with path.open("rb") as stream:
        while left > 0 and (chunk := stream.read(min(_READ_CHUNK, left))):
            chunks.append(chunk)
            left -= len(chunk)
    return b"".join(chunks)


# -- the node's key --------------------------------------------------------------------------


def load_or_create_key(path: Path, node_id: str) -> NodeKey:
    """The node's mule signing key from ``path`` (64 hex digits), made on first use with
    mode 0600; its public key line is written beside it as ``<path>.pub``."""
    try:
        info = path.stat()
    except FileNotFoundError:
        key = _create_key(path)
    else:
        if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"mule key {path} is readable by other users; make it private (chmod 600)"
            )
        try:
            text = path.read_text("ascii").strip()
            key = NodeKey(bytes.fromhex(text))
        except (OSError, UnicodeDecodeError, ValueError, ConfigError) as exc:
            raise ConfigError(f"mule key {path}: not a key ({exc})") from None
    public = path.with_name(path.name + ".pub")
    line = public_key_line(node_id, key.public_hex)
    with contextlib.suppress(OSError):
        if not public.exists() or public.read_text("ascii") != line:
            write_atomic(public.parent, public.name, line.encode("ascii"))
    return key


def _create_key(path: Path) -> NodeKey:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    seed = bytes(SigningKey.generate())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # made meanwhile by another process: use that one
        return NodeKey(bytes.fromhex(path.read_text("ascii").strip()))
    with os.fdopen(fd, "w") as handle:
        handle.write(seed.hex() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    sync_directory(path.parent)
    return NodeKey(seed)


def read_trusted_dir(directory: Path) -> list[tuple[str, str, str]]:
    """(node ID, hex key, file) for every ``*.pub`` file in ``directory``."""
    found = []
    try:
        paths = sorted(directory.glob("*.pub"))
    except OSError as exc:
        raise ConfigError(f"mule trusted keys {directory}: {exc.strerror or exc}") from None
    for path in paths:
        try:
            text = path.read_text("ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"mule trusted key {path}: unreadable ({exc})") from None
        lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
        for line in lines:
            node, hex_key = parse_public_key_line(line, str(path))
            found.append((node, hex_key, str(path)))
    return found
