"""The ``mule`` convergence layer: bundles carried between sites on a USB stick.

A *sync* exchanges bundles between the node and a mule directory (see
:mod:`dtncloud.mule.stick` for its layout and ``docs/mule.md`` for operators). It runs in
phases:

1. **reading**: every writer's manifest is read and checked against the trusted keys;
2. **importing**: each intact bundle this node has not taken before is handed to the node
   (``Node.receive``); only once the node has stored it is it recorded as taken in this
   node's manifest, which is then written (ARCHITECTURE rule 4);
3. **pruning**: copies whose job is done (:func:`dtncloud.mule.plan.done_reason`) and
   leftovers of interrupted writes are removed;
4. **exporting**: one :class:`MuleLink` per configured peer (and, when asked, one to the
   *carrier*, a stand-in node ID for "whoever takes it") comes up, so the engine's routing
   decides what goes on the stick. ``Link.send`` returns only once the bundle's file is
   written and synced *and* a synced manifest lists it, so the engine lets the bundle go
   (or keeps it under custody) only when the stick's copy can be found and checked. Writes
   are grouped under one manifest rewrite. When nothing has been offered for
   ``settle_s`` and nothing is being written, the links go down and the sync ends.

A bundle that does not fit (``capacity``, free space) is refused with
:class:`~dtncloud.errors.TransferRefused` and stays at the node; a write that fails (the
stick pulled out) ends the export with :class:`~dtncloud.errors.LinkDown` for every bundle
not yet covered by a manifest.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import itertools
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dtncloud.bpv7.flags import StatusReportReason
from dtncloud.cla.base import ConvergenceLayer, Link, LinkEvents, Outgoing, ReceivedBundle
from dtncloud.dtntime import dtn_time_from_unix
from dtncloud.errors import (
    CodecError,
    ConfigError,
    ConnectError,
    DtnError,
    LinkDown,
    ServiceError,
    TransferRefused,
)
from dtncloud.mule.keys import NodeKey, TrustedKeys, check_node_id, public_key_line
from dtncloud.mule.manifest import Entry, encode_manifest
from dtncloud.mule.plan import (
    ORDERS,
    BundleFacts,
    bundle_facts,
    bundle_file_name,
    done_reason,
    node_dir_name,
    order_key,
    record_until,
    unwrap_bpdu,
)
from dtncloud.mule.report import SyncReport
from dtncloud.mule.stick import (
    MANIFEST,
    NODES,
    Stick,
    load_or_create_key,
    read_trusted_dir,
    remove,
    write_atomic,
)
from dtncloud.mule.survey import Survey, survey
from dtncloud.routing.base import node_of

__all__ = ["MuleBusy", "MuleConvergenceLayer", "MuleLink", "MuleOptions", "SyncJob"]

log = logging.getLogger("dtncloud.cla.mule")

#: TCPCL XFER_REFUSE "no resources": no room on the stick (try later, elsewhere).
_NO_RESOURCES = 2
#: TCPCL XFER_REFUSE "not acceptable".
_NOT_ACCEPTABLE = 4
#: At most this many bundle files are written under one manifest rewrite.
_BATCH = 64
#: Finished syncs whose reports can still be fetched.
_KEEP_JOBS = 16
_DEFAULT_MAX_BUNDLE = 64 << 20


@dataclass(frozen=True)
class MuleOptions:
    """Settings of a mule convergence layer (``[[cla]] type = "mule"``).

    ``node_id`` is this node's ID; ``key_path`` its Ed25519 signing key (created, mode 0600,
    on first use; ``<key_path>.pub`` holds the line to give other sites). ``peers`` are the
    node IDs reached through the stick (``[[peer]] cla = "mule"``). Manifests are believed
    when signed by a key in ``trusted_keys`` (node ID -> 64 hex digits) or in a ``*.pub``
    file in ``trusted_dir`` (read at every sync). ``watch`` is a mule directory to sync
    with whenever it appears (checked every ``poll_s`` seconds). ``capacity`` caps the bytes
    of bundle files on the stick (all writers together), and ``reserve`` bytes of free space
    are always left. ``order`` ranks bundles when not all fit: ``urgent``, ``smallest`` or
    ``engine``. ``any_destination`` makes syncs by ``watch`` also offer the link to
    ``carrier_id``. ``settle_s``: the export ends once nothing was offered for this long.
    """

    node_id: str
    key_path: Path
    peers: tuple[str, ...] = ()
    trusted_keys: Mapping[str, str] = field(default_factory=dict)
    trusted_dir: Path | None = None
    watch: Path | None = None
    poll_s: float = 3.0
    capacity: int | None = None
    reserve: int = 1 << 20
    order: str = "urgent"
    any_destination: bool = False
    carrier_id: str = "dtn://mule/"
    settle_s: float = 2.0
    max_bundle_size: int | None = None

    def __post_init__(self) -> None:
        check_node_id(self.node_id, "mule: node_id")
        check_node_id(self.carrier_id, "mule: carrier_id")
        peers = tuple(check_node_id(p, "mule: peers") for p in self.peers)
        object.__setattr__(self, "peers", peers)
        if self.node_id in peers or self.carrier_id in peers:
            raise ConfigError("mule: peers must not name this node or the carrier")
        if self.carrier_id == self.node_id:
            raise ConfigError("mule: carrier_id must not be this node's ID")
        if self.order not in ORDERS:
            raise ConfigError(f"mule: order must be one of {', '.join(ORDERS)}, not {self.order!r}")
        for name in ("poll_s", "settle_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"mule: {name} must be positive")
        for name in ("capacity", "max_bundle_size"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"mule: {name} must be positive")
        if self.reserve < 0:
            raise ConfigError("mule: reserve must not be negative")
        TrustedKeys(self.trusted_keys)  # one-line errors now rather than at the first sync


class MuleBusy(ServiceError):
    """A sync with another mule directory is under way."""


class MuleLink(Link):
    """The link to one peer (or the carrier) while a sync runs: sending writes to the stick."""

    cla_name = "mule"

    def __init__(
        self, cla: MuleConvergenceLayer, peer: str | None, path: str, export: _Export | None
    ) -> None:
        super().__init__()
        self.cla = cla
        self.peer = peer
        self.peer_address = path
        self.export = export
        self._up = export is not None

    @property
    def peer_node_id(self) -> str | None:
        return self.peer

    @property
    def max_bundle_size(self) -> int | None:
        return self.cla.options.max_bundle_size

    @property
    def is_up(self) -> bool:
        return self._up

    @property
    def carrier(self) -> bool:
        return self.peer == self.cla.options.carrier_id

    async def send(self, bundle: Outgoing) -> None:
        if not self._up or self.export is None:
            raise LinkDown(f"no mule sync with {self.peer_address} is under way")
        if isinstance(bundle, (bytes, bytearray, memoryview)):
            data = bytes(bundle)
        else:
            data = await asyncio.to_thread(Path(os.fspath(bundle)).read_bytes)
        await self.export.offer(self, data)
        self.stats.bundles_sent += 1
        self.stats.bytes_sent += len(data)

    async def close(self) -> None:
        self.go_down("closed")

    def go_down(self, reason: str) -> None:
        if self._up:
            self._up = False
            self.cla.events.link_down(self, reason)


@dataclass(eq=False)
class SyncJob:
    """One sync, running or finished: its live :class:`SyncReport`."""

    id: int
    path: Path
    dry_run: bool
    report: SyncReport
    task: asyncio.Task[None] | None = None

    @property
    def done(self) -> bool:
        return self.task is not None and self.task.done()

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait up to ``timeout`` seconds (None: until it ends); whether it has ended."""
        if self.task is None:
            return False
        await asyncio.wait([self.task], timeout=timeout)
        return self.task.done()


class MuleConvergenceLayer(ConvergenceLayer):
    """The mule CLA. :meth:`sync` (or :meth:`start_sync`, for the API) runs a sync; with
    ``options.watch`` it also syncs by itself when that directory appears."""

    name = "mule"
    reliable = True

    def __init__(
        self,
        events: LinkEvents,
        options: MuleOptions,
        *,
        clock: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(events)
        self.options = options
        node_clock = getattr(events, "clock", None)
        self.clock: Callable[[], int] = clock or node_clock or _wall_clock_ms
        self.key: NodeKey | None = None
        self._links: list[MuleLink] = []
        self._jobs: dict[int, SyncJob] = {}
        self._job_ids = itertools.count(1)
        self._current: SyncJob | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._reader = MuleLink(self, None, "", None)

    @property
    def max_bundle_size(self) -> int | None:
        return self.options.max_bundle_size

    @property
    def links(self) -> list[Link]:
        return list(self._links)

    async def start(self) -> None:
        options = self.options
        self.key = await asyncio.to_thread(load_or_create_key, options.key_path, options.node_id)
        if options.watch is not None:
            self._watcher = asyncio.ensure_future(self._watch(options.watch))

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        job = self._current
        if job is not None and job.task is not None and not job.task.done():
            job.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job.task
            if not job.report.done:  # cancelled before it began
                job.report.phase = "failed"
                job.report.error = "the node stopped during the sync"
        for link in list(self._links):
            link.go_down("the mule convergence layer stopped")

    async def connect(self, address: str) -> Link:
        raise ConnectError(
            "mule links are not opened on demand: they exist while a sync runs "
            "(dtncloud mule sync PATH)"
        )

    @property
    def public_key_line(self) -> str:
        if self.key is None:
            raise ServiceError("the mule convergence layer is not started")
        return public_key_line(self.options.node_id, self.key.public_hex)

    # -- syncs -----------------------------------------------------------------------------

    def start_sync(
        self,
        path: str | os.PathLike[str],
        *,
        dry_run: bool = False,
        any_destination: bool | None = None,
        capacity: int | None = None,
    ) -> SyncJob:
        """Start a sync with the mule directory ``path`` (or join the one running with it).
        Raises :class:`MuleBusy` while a sync with another directory runs."""
        if self.key is None:
            raise ServiceError("the mule convergence layer is not started")
        where = Path(os.path.abspath(os.fspath(path)))
        current = self._current
        if current is not None and not current.done:
            if current.path == where and current.dry_run == dry_run:
                return current
            raise MuleBusy(f"a mule sync with {current.path} is under way; try again after it")
        if capacity is not None and capacity <= 0:
            raise ConfigError("mule sync: capacity must be positive")
        job = SyncJob(next(self._job_ids), where, dry_run, SyncReport(str(where), dry_run))
        run = _Sync(
            self,
            job,
            self.options.any_destination if any_destination is None else any_destination,
            self.options.capacity if capacity is None else capacity,
        )
        job.task = asyncio.ensure_future(run.run())
        self._current = job
        self._jobs[job.id] = job
        for old in sorted(self._jobs)[:-_KEEP_JOBS]:
            if self._jobs[old].done:
                del self._jobs[old]
        return job

    def job(self, job_id: int) -> SyncJob | None:
        """A sync started earlier (the last few are kept once finished)."""
        return self._jobs.get(job_id)

    async def sync(
        self,
        path: str | os.PathLike[str],
        *,
        dry_run: bool = False,
        any_destination: bool | None = None,
        capacity: int | None = None,
    ) -> SyncReport:
        """Sync with ``path`` now and return what moved."""
        job = self.start_sync(
            path, dry_run=dry_run, any_destination=any_destination, capacity=capacity
        )
        await job.wait()
        return job.report

    async def trusted(self) -> TrustedKeys:
        """The keys manifests are checked against: this node's own, the configured ones and
        those in the trusted directory (read now)."""
        assert self.key is not None
        keys = TrustedKeys(self.options.trusted_keys)
        keys.add(self.options.node_id, self.key.public_hex, "this node's own mule key")
        if self.options.trusted_dir is not None:
            for node, hex_key, where in await asyncio.to_thread(
                read_trusted_dir, self.options.trusted_dir
            ):
                keys.add(node, hex_key, where)
        return keys

    async def _watch(self, path: Path) -> None:
        present = False
        while True:
            try:
                there = await asyncio.to_thread(path.is_dir)
            except OSError:  # a mount point going away can fail to stat for a moment
                there = False
            if there and not present:
                try:
                    job = self.start_sync(path)
                except MuleBusy:
                    there = False  # try again at the next look
                else:
                    await job.wait()
            present = there
            await asyncio.sleep(self.options.poll_s)

    async def receive(self, data: bytes) -> tuple[bool, int]:
        """Hand a bundle to the node; (accepted, reason) once it is stored or refused."""
        node_receive = getattr(self.events, "receive", None)
        if node_receive is not None:
            result: tuple[bool, int] = await node_receive(data)
            return result
        try:
            await self.events.bundle_received(
                ReceivedBundle(length=len(data), link=self._reader, data=data)
            )
        except TransferRefused:
            return False, int(StatusReportReason.DEPLETED_STORAGE)
        return True, 0


def _wall_clock_ms() -> int:
    return dtn_time_from_unix(time.time())


def _reason_text(reason: int) -> str:
    try:
        return StatusReportReason(reason).name.lower().replace("_", " ")
    except ValueError:
        return f"reason {reason}"


class _Sync:
    """One run of a sync (see the module docstring for its phases)."""

    def __init__(
        self, cla: MuleConvergenceLayer, job: SyncJob, any_destination: bool, capacity: int | None
    ) -> None:
        assert cla.key is not None
        self.cla = cla
        self.key = cla.key
        self.job = job
        self.report = job.report
        self.dry_run = job.dry_run
        self.any_destination = any_destination
        self.capacity = capacity
        self.node_id = cla.options.node_id
        self.stick = Stick(job.path)
        self.own_name = node_dir_name(self.node_id)
        self.own_path = self.stick.node_path(self.own_name)
        #: other writers' entries whose files were checked intact in this sync, by bundle ID
        self.verified: dict[str, list[Entry]] = {}

    async def run(self) -> None:
        report = self.report
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            report.phase = "reading"
            await asyncio.to_thread(self._open)
            trusted = await self.cla.trusted()
            found = await asyncio.to_thread(survey, self.stick, trusted, self.node_id, self.key)
            for problem in found.problems:
                report.skip(problem.path, problem.reason)
            report.phase = "importing"
            await self._import(found)
            report.phase = "pruning"
            await self._prune(found)
            report.phase = "exporting"
            await self._export(found)
            report.phase = "done"
        except (OSError, DtnError) as exc:
            report.error = str(exc) if isinstance(exc, DtnError) else _os_error(exc)
            report.phase = "failed"
            log.warning("mule sync with %s failed: %s", self.job.path, report.error)
        except Exception as exc:  # a bug must end this sync, not the node
            log.exception("mule sync with %s failed", self.job.path)
            report.error = f"internal error: {type(exc).__name__}: {exc}; see the node's log"
            report.phase = "failed"
        finally:
            report.duration_ms = round((loop.time() - started) * 1000)
            if report.phase not in ("done", "failed"):  # cancelled: the node is stopping
                report.phase = "failed"
                report.error = report.error or "the node stopped during the sync"
        for skipped in report.skipped:
            log.warning("mule %s: %s: %s", self.job.path, skipped.path, skipped.reason)
        log.info("mule sync: %s", "; ".join(line.strip() for line in report.summary()[1:]))

    def _open(self) -> None:
        self.stick.open(create=not self.dry_run)
        if not self.dry_run:
            self.own_path.mkdir(parents=True, exist_ok=True)
            self.stick.publish_key(self.own_name, self.cla.public_key_line)

    async def commit(self, found: Survey) -> None:
        """Write this node's manifest (signed, atomically)."""
        own = found.own
        own.seq += 1
        own.written_ms = self.cla.clock()
        data = encode_manifest(own, self.key)
        await asyncio.to_thread(write_atomic, self.own_path, MANIFEST, data)

    # -- importing -------------------------------------------------------------------------

    async def _import(self, found: Survey) -> None:
        own, report = found.own, self.report
        changed = False
        manifests = found.manifests
        for _writer, (directory, manifest) in sorted(found.others.items()):
            entries = sorted(
                manifest.bundles.items(), key=lambda item: (item[1].expires_ms or 0, item[0])
            )
            for name, entry in entries:
                now = self.cla.clock()
                if done_reason(entry, manifests, now) is not None:
                    continue  # pruned below
                if entry.sha256 in own.taken or entry.bundle_id in own.delivered:
                    report.seen += 1
                    continue
                where = f"{NODES}/{directory.name}/{name}"
                data, problem = await asyncio.to_thread(
                    self.stick.read_checked, directory.path / name, entry
                )
                if data is None:
                    report.skip(where, problem or "unreadable")
                    continue
                self.verified.setdefault(entry.bundle_id, []).append(entry)
                if not self.dry_run:
                    accepted, reason = await self.cla.receive(data)
                    if not accepted:
                        report.skip(where, f"refused by this node: {_reason_text(reason)}")
                        continue
                    # Stored: only now may the copy count as taken (rule 4).
                    until = record_until(entry, now)
                    own.taken[entry.sha256] = until
                    if node_of(entry.destination) == self.node_id:
                        own.delivered[entry.bundle_id] = until
                    changed = True
                report.imported += 1
                report.imported_bytes += entry.size
        if changed:
            await self.commit(found)

    # -- pruning ---------------------------------------------------------------------------

    async def _prune(self, found: Survey) -> None:
        own, report = found.own, self.report
        now = self.cla.clock()
        manifests = found.manifests
        doomed: list[Path] = []
        changed = False
        for name, entry in sorted(own.bundles.items()):
            reason = done_reason(entry, manifests, now)
            if reason is None and name in found.own_dir.bundles:
                continue
            if reason is None:
                report.skip(f"{NODES}/{self.own_name}/{name}", "missing from the stick")
            else:
                report.pruned += 1
                report.pruned_bytes += entry.size
            del own.bundles[name]
            doomed.append(self.own_path / name)
            changed = True
        if own.forget_records(now):
            changed = True
        junk = [self.own_path / name for name in found.own_dir.tmp]
        if found.own_valid:  # files a cut-short export left under their final names
            junk += [self.own_path / n for n in found.own_dir.bundles if n not in own.bundles]
            junk = [path for path in junk if path not in doomed]
        others: list[tuple[Path, int]] = []
        for directory, manifest in found.others.values():
            for name, entry in sorted(manifest.bundles.items()):
                if name in directory.bundles and done_reason(entry, manifests, now):
                    others.append((directory.path / name, entry.size))
        report.pruned += len(others)
        report.pruned_bytes += sum(size for _, size in others)
        if self.dry_run:
            return
        if changed:
            await self.commit(found)  # the manifest first: a listed file is never missing
        for path in [*doomed, *junk, *(path for path, _ in others)]:
            await asyncio.to_thread(remove, path)

    # -- exporting -------------------------------------------------------------------------

    async def _export(self, found: Survey) -> None:
        options = self.cla.options
        room = None
        if not self.dry_run:
            free = await asyncio.to_thread(self.stick.free_bytes)
            room = max(0, free - options.reserve)
            if self.capacity is not None:
                used = await asyncio.to_thread(self.stick.bundle_bytes)
                room = min(room, max(0, self.capacity - used))
        export = _Export(self, found, room)
        peers = list(options.peers)
        if self.any_destination:
            peers.append(options.carrier_id)
        links = [MuleLink(self.cla, peer, str(self.job.path), export) for peer in peers]
        self.cla._links = links
        writer = asyncio.ensure_future(export.write())
        try:
            for link in links:
                self.cla.events.link_up(link)
            await export.settled()
        finally:
            for link in links:
                link.go_down("the mule sync is over")
            self.cla._links = []
            # The writer finishes the file and the manifest rewrite under way (so that no
            # bundle on the stick is also kept by the node), then ends.
            export.close(LinkDown("the mule sync is over"))
            await asyncio.gather(writer, return_exceptions=True)
        if export.error is not None:
            raise export.error


@dataclass(eq=False)
class _Offer:
    link: MuleLink
    facts: BundleFacts
    name: str
    data: bytes | None  # None: the file is there already; only the manifest changes
    future: asyncio.Future[None]


class _Export:
    """The export phase: offers from every link, ranked, written one at a time, released
    in groups once a manifest rewrite covers them."""

    def __init__(self, sync: _Sync, found: Survey, room: int | None) -> None:
        self.sync = sync
        self.found = found
        self.own = found.own
        self.room = room
        self.options = sync.cla.options
        self.report = sync.report
        self.loop = asyncio.get_running_loop()
        self.queue: list[tuple[tuple[int, ...], int, _Offer]] = []
        self.sequence = itertools.count()
        self.wake = asyncio.Event()
        self.in_flight = 0
        self.last_activity = self.loop.time()
        self.closed = False
        self.error: OSError | None = None
        self.max_size = self.options.max_bundle_size or _DEFAULT_MAX_BUNDLE

    def _touch(self) -> None:
        self.last_activity = self.loop.time()

    async def offer(self, link: MuleLink, data: bytes) -> None:
        if self.closed:
            raise LinkDown("the mule sync is over")
        self._touch()
        self.in_flight += 1
        try:
            await self._offer(link, data)
        finally:
            self.in_flight -= 1
            self._touch()

    async def _offer(self, link: MuleLink, data: bytes) -> None:
        report = self.report
        now = self.sync.cla.clock()
        if link.carrier:
            # Nobody can answer custody for the stand-in carrier node: the stick carries the
            # bundle itself, for whoever takes it (the sender keeps its custody copy).
            data = unwrap_bpdu(data, max_size=self.max_size) or data
        try:
            facts = bundle_facts(data, now, max_size=self.max_size)
        except CodecError as exc:
            raise TransferRefused(f"not a bundle: {exc}", reason=_NOT_ACCEPTABLE) from None
        if self.sync.dry_run:
            report.exported += 1
            report.exported_bytes += facts.size
            raise TransferRefused("dry run: nothing is written", reason=_NO_RESOURCES)
        peer = link.peer or ""
        name = bundle_file_name(facts.bundle_id)
        listed = self.own.bundles.get(name)
        if listed is not None and listed.bundle_id == facts.bundle_id:
            if peer in listed.peers:
                self._count(facts, already=True)
                return
            write: bytes | None = None  # the same bundle for one more peer
        elif self._carried_elsewhere(facts.bundle_id, peer):
            self._count(facts, already=True)
            return
        else:
            write = data
        future: asyncio.Future[None] = self.loop.create_future()
        offer = _Offer(link, facts, name, write, future)
        sequence = next(self.sequence)
        heapq.heappush(
            self.queue, (order_key(self.options.order, facts, sequence), sequence, offer)
        )
        self.wake.set()
        await future
        self._count(facts, already=write is None)

    def _count(self, facts: BundleFacts, *, already: bool) -> None:
        self.report.exported += 1
        self.report.exported_bytes += facts.size
        if already:
            self.report.already += 1

    def _carried_elsewhere(self, bundle_id: str, peer: str) -> bool:
        """Whether another writer's copy, checked intact in this sync and still needed,
        already goes to ``peer``: then it is as good as ours."""
        now = self.sync.cla.clock()
        manifests = self.found.manifests
        return any(
            peer in entry.peers and done_reason(entry, manifests, now) is None
            for entry in self.sync.verified.get(bundle_id, ())
        )

    async def write(self) -> None:
        """Write what is offered, best first, until the export ends. An offer taken from
        the queue is always answered, whatever happens to this task."""
        while not self.closed or self.queue:
            if not self.queue:
                self.wake.clear()
                await self.wake.wait()
                continue
            batch: list[_Offer] = []
            current: _Offer | None = None
            try:
                while self.queue and len(batch) < _BATCH:
                    _, _, current = heapq.heappop(self.queue)
                    if not current.future.done() and await self._write_one(current):
                        batch.append(current)
                    current = None
                if batch:
                    await self.sync.commit(self.found)
            except BaseException as exc:
                if isinstance(exc, OSError):
                    failure = LinkDown(f"writing to the stick failed: {_os_error(exc)}")
                else:
                    failure = LinkDown(f"the mule sync stopped: {exc!r}")
                for offer in (*batch, current):
                    if offer is not None and not offer.future.done():
                        offer.future.set_exception(failure)
                self.close(failure)
                if isinstance(exc, OSError):
                    self.error = exc
                    return
                raise
            finally:
                self._touch()
            for offer in batch:
                if not offer.future.done():
                    offer.future.set_result(None)

    async def _write_one(self, offer: _Offer) -> bool:
        size = offer.facts.size
        peer = offer.link.peer or ""
        listed = self.own.bundles.get(offer.name)
        if listed is not None and listed.bundle_id != offer.facts.bundle_id:
            listed = None  # a digest collision: the new bundle takes the name
        if listed is not None:
            # Listed meanwhile (offered for two peers at once): never rewrite a listed file,
            # only add the peer.
            peers = tuple(dict.fromkeys((*listed.peers, peer)))
            self.own.bundles[offer.name] = replace(listed, peers=peers)
            return True
        if offer.data is None:  # its entry went away meanwhile; cannot happen in one sync
            offer.future.set_exception(LinkDown("the stick's copy went away"))
            return False
        if self.room is not None and size > self.room:
            self.report.left += 1
            self.report.left_bytes += size
            offer.future.set_exception(
                TransferRefused(
                    f"no room on the stick for {size} bytes ({self.room} left)",
                    reason=_NO_RESOURCES,
                )
            )
            return False
        await asyncio.to_thread(write_atomic, self.sync.own_path, offer.name, offer.data)
        if self.room is not None:
            self.room -= size
        self.own.bundles[offer.name] = Entry(
            bundle_id=offer.facts.bundle_id,
            destination=offer.facts.destination,
            size=size,
            sha256=_sha256(offer.data),
            expires_ms=offer.facts.expires_ms,
            peers=(peer,),
        )
        return True

    async def settled(self) -> None:
        """Return once nothing has been offered for ``settle_s`` and nothing is pending."""
        settle = self.options.settle_s
        while not self.closed:
            quiet = self.loop.time() - self.last_activity
            if not self.queue and not self.in_flight and quiet >= settle:
                return
            await asyncio.sleep(max(settle - quiet, settle / 10))

    def close(self, error: BaseException) -> None:
        """End the export: whatever is still waiting fails with ``error`` (stays at the
        node)."""
        self.closed = True
        self.wake.set()
        while self.queue:
            _, _, offer = heapq.heappop(self.queue)
            if not offer.future.done():
                offer.future.set_exception(error)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _os_error(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def mule_of(clas: Mapping[str, Any]) -> MuleConvergenceLayer | None:
    """The first mule CLA among ``clas`` (a daemon's CLAs by name), if any."""
    return next((c for c in clas.values() if isinstance(c, MuleConvergenceLayer)), None)
