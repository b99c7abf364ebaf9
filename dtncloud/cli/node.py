"""Commands that talk to a running node through its application API.

Every one takes ``--api PATH`` (a Unix socket, or ``tcp://host:port`` with ``--token``), or
reads ``DTNCLOUD_API`` / ``DTNCLOUD_TOKEN`` from the environment. Listings print a table, or
JSON with ``--json`` for scripts.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from dtncloud.cli._output import CliError, atomic_write
from dtncloud.cli._params import DurationParam
from dtncloud.cli._received import bundle_file_name
from dtncloud.client import Client, Received
from dtncloud.dtntime import dtn_time_from_unix, format_dtn_time
from dtncloud.runtime.echo import echo_endpoint

__all__ = ["NODE_COMMANDS"]

T = TypeVar("T")
#: Payloads at least this big get a progress bar (on a terminal).
PROGRESS_FROM = 1 << 20
_REPORTS = ("reception", "forwarding", "delivery", "deletion")


def api_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--api`` and ``--token``, shared by every command here."""
    command = click.option(
        "--token",
        envvar="DTNCLOUD_TOKEN",
        help="The API token (needed for a tcp:// API). Env: DTNCLOUD_TOKEN.",
    )(command)
    return click.option(
        "--api",
        envvar="DTNCLOUD_API",
        metavar="PATH",
        help="The node's API socket, or tcp://HOST:PORT. Env: DTNCLOUD_API.",
    )(command)


def subcommand_api(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--api``/``--token`` after a listing's subcommand too (``routes add --api S ...``),
    as every other command takes them; given there, they win over the group's."""

    @functools.wraps(command)
    def with_api(
        obj: tuple[str | None, str | None], api: str | None, token: str | None, **kwargs: Any
    ) -> Any:
        return command((api or obj[0], token or obj[1]), **kwargs)

    return click.pass_obj(api_options(with_api))


def json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")(command)


def _run(api: str | None, token: str | None, work: Callable[[Client], Awaitable[T]]) -> T:
    if not api:
        raise CliError("no node to talk to: pass --api PATH or set DTNCLOUD_API")

    async def session() -> T:
        async with await Client.connect(api, token=token) as client:
            return await work(client)

    return asyncio.run(session())


# --- send and receive ----------------------------------------------------------------------


@click.command()
@api_options
@click.option("--to", "destination", required=True, metavar="EID", help="Destination endpoint.")
@click.option(
    "--file",
    "path",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Payload file ('-' for stdin).",
)
@click.option("--text", help="Payload text (UTF-8).")
@click.option(
    "--source", metavar="EID", help="Source endpoint on the node (default: the node's own)."
)
@click.option(
    "--lifetime",
    type=DurationParam(),
    default="1d",
    show_default=True,
    help="How long the bundle may live, e.g. 90s, 1h, 2d.",
)
@click.option(
    "--report",
    "reports",
    multiple=True,
    type=click.Choice(_REPORTS),
    help="Ask for a status report (repeatable).",
)
@click.option("--report-to", metavar="EID", help="Where status reports go (default: the source).")
@click.option(
    "--custody", is_flag=True, help="Ask for custody transfer (the node must have it on)."
)
@click.option(
    "--sign",
    metavar="KEY",
    help="Sign with this BPSec key of the node ('none': do not; default: the node's setting).",
)
@click.option(
    "--encrypt",
    metavar="KEY",
    help="Encrypt the payload with this BPSec key ('none': do not; default: the node's setting).",
)
def send(
    api: str | None,
    token: str | None,
    destination: str,
    path: str | None,
    text: str | None,
    source: str | None,
    lifetime: int,
    reports: tuple[str, ...],
    report_to: str | None,
    custody: bool,
    sign: str | None,
    encrypt: str | None,
) -> None:
    """Send a bundle through the node; prints its bundle ID once the node has stored it."""
    if (path is None) == (text is None):
        raise click.UsageError("give exactly one of --file and --text")
    if text is not None:
        payload = text.encode("utf-8")
    elif path == "-":
        payload = sys.stdin.buffer.read()
    else:
        assert path is not None
        payload = Path(path).read_bytes()

    async def work(client: Client) -> str:
        with _progress(len(payload), "sending") as progress:
            return await client.send(
                destination,
                payload,
                source=source,
                lifetime=lifetime / 1000,
                reports=reports,
                report_to=report_to,
                custody=custody,
                sign=_key_choice(sign),
                encrypt=_key_choice(encrypt),
                progress=progress,
            )

    click.echo(_run(api, token, work))


def _key_choice(name: str | None) -> str | bool | None:
    return False if name == "none" else name


class _progress:
    """A progress bar on stderr for big payloads on a terminal; otherwise nothing."""

    def __init__(self, total: int, label: str) -> None:
        self.total = total
        self.bar: Any = None
        if total >= PROGRESS_FROM and sys.stderr.isatty():
            self.bar = click.progressbar(length=total, label=label, file=sys.stderr)
        self.done = 0

    def __enter__(self) -> Callable[[int, int], None] | None:
        if self.bar is None:
            return None
        self.bar.__enter__()
        return self.update

    def update(self, sent: int, total: int) -> None:
        self.bar.update(sent - self.done)
        self.done = sent

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


@click.command()
@api_options
@click.option(
    "--endpoint",
    required=True,
    metavar="EID",
    help="Endpoint to receive for (a full EID, or a name on the node such as 'sensor').",
)
@click.option("--count", type=click.IntRange(min=1), help="Exit after this many bundles.")
@click.option("--timeout", type=click.FloatRange(min=0), help="Exit after this many seconds.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write each payload to its own file here (default: print them).",
)
def recv(
    api: str | None,
    token: str | None,
    endpoint: str,
    count: int | None,
    timeout: float | None,
    out_dir: Path | None,
) -> None:
    """Receive bundles for an endpoint: those waiting, then new ones as they come.

    Each bundle is acknowledged to the node only after its payload is written (and, with
    --out, synced to disk), so stopping this command at any moment loses nothing: what was
    not acknowledged is delivered again next time.
    """
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)

    async def work(client: Client) -> int:
        full = await client.register(endpoint)
        received = 0
        deadline = None if timeout is None else time.monotonic() + timeout
        stream = client.bundles(full).__aiter__()
        while count is None or received < count:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                bundle = await asyncio.wait_for(stream.__anext__(), left)
            except (TimeoutError, StopAsyncIteration):
                break
            _hand_over(bundle, out_dir)
            await bundle.ack()
            received += 1
        await client.unregister(full)
        return received

    received = _run(api, token, work)
    if count is not None and received < count:
        raise CliError(f"received {received} of {count} bundles before the timeout")


def _hand_over(bundle: Received, out_dir: Path | None) -> None:
    if out_dir is None:
        sys.stdout.buffer.write(bundle.payload)
        if not bundle.payload.endswith(b"\n"):
            sys.stdout.buffer.write(b"\n")
        sys.stdout.buffer.flush()
        return
    name = bundle_file_name(bundle.bundle_id).removesuffix(".bundle") + ".payload"
    atomic_write(out_dir / name, bundle.payload)
    click.echo(
        f"{bundle.bundle_id} from {bundle.source}: {len(bundle.payload)} bytes -> {out_dir / name}",
        err=True,
    )


# --- ping ----------------------------------------------------------------------------------


@click.command()
@api_options
@click.argument("target", metavar="EID")
@click.option("--count", "-c", type=click.IntRange(min=1), default=3, show_default=True)
@click.option(
    "--interval",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Seconds between pings.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds to wait for the last reply.",
)
def ping(
    api: str | None, token: str | None, target: str, count: int, interval: float, timeout: float
) -> None:
    """Ping a node's echo endpoint over DTN and show the round-trip times.

    TARGET is a node ID (its echo endpoint is used: <node>/echo, or ipn:N.7) or an endpoint.
    """
    echo = echo_endpoint(target) if _is_node_id(target) else target

    async def work(client: Client) -> list[float]:
        hello = await client.ping()
        reply_to = await client.register(_ping_endpoint(str(hello["node_id"])))
        sent: dict[bytes, tuple[int, float]] = {}
        times: list[float] = []
        stream = client.bundles(reply_to).__aiter__()
        waiting: asyncio.Task[Received] | None = None
        try:
            for seq in range(1, count + 1):
                nonce = secrets.token_bytes(8)
                payload = b"dtncloud-ping %d " % seq + nonce.hex().encode()
                sent[payload] = (seq, time.monotonic())
                await client.send(
                    echo, payload, source=reply_to, lifetime=max(timeout, interval * count) + 60
                )
                until = time.monotonic() + (interval if seq < count else timeout)
                while sent and (left := until - time.monotonic()) > 0:
                    waiting = waiting or asyncio.ensure_future(stream.__anext__())
                    done, _ = await asyncio.wait({waiting}, timeout=left)
                    if not done:
                        break
                    reply, waiting = waiting.result(), None
                    await reply.ack()
                    seq_sent = sent.pop(reply.payload, None)
                    if seq_sent is None:
                        continue  # a late answer to an earlier run
                    rtt = (time.monotonic() - seq_sent[1]) * 1000
                    times.append(rtt)
                    click.echo(f"reply from {reply.source}: seq={seq_sent[0]} time={rtt:.1f} ms")
                if seq < count and (left := until - time.monotonic()) > 0:
                    await asyncio.sleep(left)  # pacing the pings, not waiting for a result
        finally:
            if waiting is not None:
                waiting.cancel()
            await client.unregister(reply_to, forget=True)
        return times

    times = _run(api, token, work)
    lost = count - len(times)
    summary = f"--- {echo}: {count} sent, {len(times)} received, {lost * 100 // count}% lost"
    if times:
        summary += (
            f", rtt min/avg/max {min(times):.1f}/{sum(times) / len(times):.1f}/{max(times):.1f} ms"
        )
    click.echo(summary)
    if not times:
        sys.exit(1)


def _is_node_id(eid: str) -> bool:
    if eid.startswith("ipn:"):
        return eid.endswith(".0")
    return eid.startswith("dtn://") and eid.endswith("/") and eid.count("/") == 3


def _ping_endpoint(node_id: str) -> str:
    tag = f"ping-{os.getpid()}-{secrets.token_hex(3)}"
    if node_id.startswith("ipn:"):
        # a service number from the private-use range, unlikely to be taken
        return f"{node_id.rpartition('.')[0]}.{4_000_000_000 + secrets.randbelow(1 << 24)}"
    return node_id.rstrip("/") + "/" + tag


# --- status and listings -------------------------------------------------------------------


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


def _table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], empty: str) -> None:
    """Rows as aligned columns; a column key ``a.b`` reads ``row["a"]["b"]``, and keys
    ending in ``_ms`` that hold DTN times are shown as UTC times."""
    if not rows:
        click.echo(empty)
        return
    cells = [[_cell(_lookup(row, key), key) for key, _ in columns] for row in rows]
    widths = [max(len(title), *(len(r[i]) for r in cells)) for i, (_, title) in enumerate(columns)]
    click.echo(
        "  ".join(title.ljust(w) for (_, title), w in zip(columns, widths, strict=True)).rstrip()
    )
    for row_cells in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row_cells, widths, strict=True)).rstrip())


def _lookup(row: dict[str, Any], key: str) -> Any:
    value: Any = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _cell(value: Any, key: str = "") -> str:
    if key.endswith("_ms") and isinstance(value, int) and value > 0:
        return format_dtn_time(value)
    if value is None:
        return "-"
    if isinstance(value, list | tuple):
        return ",".join(map(str, value)) or "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@click.command()
@api_options
@json_option
def status(api: str | None, token: str | None, as_json: bool) -> None:
    """The node's status: identity, uptime, store, links and counters."""
    document = _run(api, token, lambda client: client.status())
    if as_json:
        _print_json(document)
        return
    for key, value in _flatten(document):
        click.echo(f"{key}: {_cell(value)}")


def _flatten(document: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    lines: list[tuple[str, Any]] = []
    for key, value in document.items():
        if isinstance(value, dict):
            lines.extend(_flatten(value, f"{prefix}{key}."))
        else:
            lines.append((f"{prefix}{key}", value))
    return lines


def _listing(
    name: str,
    doc: str,
    fetch: Callable[[Client], Awaitable[list[dict[str, Any]]]],
    columns: Sequence[tuple[str, str]],
    empty: str,
    *,
    shown: Callable[[dict[str, Any]], dict[str, Any]] = dict,
) -> click.Group:
    """A listing command (table, or ``--json``); subcommands added to it (``routes add``)
    get ``(api, token)`` as their ``obj``. ``shown`` adapts a row for the table."""

    @click.group(name=name, help=doc, invoke_without_command=True)
    @api_options
    @json_option
    @click.pass_context
    def command(ctx: click.Context, api: str | None, token: str | None, as_json: bool) -> None:
        ctx.obj = (api, token)
        if ctx.invoked_subcommand is not None:
            return
        rows = _run(api, token, fetch)
        if as_json:
            _print_json(rows)
        else:
            _table([shown(row) for row in rows], columns, empty)

    return command


bundles = _listing(
    "bundles",
    "The bundles the node holds.",
    lambda client: client.list_bundles(),
    [
        ("bundle_id", "BUNDLE"),
        ("destination", "TO"),
        ("size", "BYTES"),
        ("expires_ms", "EXPIRES"),
        ("retention", "KEPT FOR"),
    ],
    "no bundles stored",
)
peers = _listing(
    "peers",
    "The configured neighbours and whether a link to each is up.",
    lambda client: client.peers(),
    [("node_id", "PEER"), ("cla", "CLA"), ("address", "ADDRESS"), ("up", "UP")],
    "no peers configured",
)
links = _listing(
    "links",
    "The links that are up, with their traffic.",
    lambda client: client.links(),
    [
        ("link_id", "LINK"),
        ("cla", "CLA"),
        ("peer_node", "PEER"),
        ("peer_address", "ADDRESS"),
        ("stats.bundles_sent", "SENT"),
        ("stats.bundles_received", "RECEIVED"),
    ],
    "no links up",
)


routes = _listing(
    "routes",
    "The node's routes; `routes add` and `routes remove` change them at run time.",
    lambda client: client.routes(),
    [("destination", "DESTINATION"), ("via", "VIA")],
    "no routes",
)


@routes.command("add")
@subcommand_api
@click.argument("destination", metavar="PATTERN")
@click.argument("via", metavar="NODE")
def routes_add(obj: tuple[str | None, str | None], destination: str, via: str) -> None:
    """Send bundles for PATTERN (e.g. dtn://cloud/*) to neighbour NODE."""
    _run(*obj, lambda client: client.add_route(destination, via))
    click.echo(f"route {destination} via {via} added")


@routes.command("remove")
@subcommand_api
@click.argument("destination", metavar="PATTERN")
def routes_remove(obj: tuple[str | None, str | None], destination: str) -> None:
    """Remove the route for PATTERN."""
    removed = _run(*obj, lambda client: client.remove_route(destination))
    if not removed:
        raise CliError(f"no route for {destination}")
    click.echo(f"route {destination} removed")


_CONTACT_COLUMNS = [
    ("from", "FROM"),
    ("to", "TO"),
    ("start_ms", "START"),
    ("end_ms", "END"),
    ("rate", "BYTES/S"),
    ("owlt", "OWLT MS"),
]


def _contact_row(contact: dict[str, Any]) -> dict[str, Any]:
    # Contact times are DTN milliseconds: shown as UTC times by the table.
    return {**contact, "start_ms": contact.get("start"), "end_ms": contact.get("end")}


contacts = _listing(
    "contacts",
    "The contact plan (router cgr); `contacts add` and `contacts remove` change it.",
    lambda client: client.contacts(),
    _CONTACT_COLUMNS,
    "no contacts",
    shown=_contact_row,
)


@contacts.command("add")
@subcommand_api
@click.argument("sender", metavar="FROM")
@click.argument("receiver", metavar="TO")
@click.option(
    "--start-in",
    type=DurationParam(),
    default="0s",
    show_default=True,
    help="When it starts, from now.",
)
@click.option(
    "--duration", type=DurationParam(), required=True, help="How long it lasts, e.g. 10m."
)
@click.option("--rate", type=click.IntRange(min=1), required=True, help="Bytes per second.")
@click.option(
    "--owlt", type=DurationParam(), default="0s", show_default=True, help="One-way light time."
)
def contacts_add(
    obj: tuple[str | None, str | None],
    sender: str,
    receiver: str,
    start_in: int,
    duration: int,
    rate: int,
    owlt: int,
) -> None:
    """Add a contact from node FROM to node TO (the plan is not saved to the configuration)."""
    start = dtn_time_from_unix(time.time()) + start_in
    contact = {
        "from": sender,
        "to": receiver,
        "start": start,
        "end": start + duration,
        "rate": rate,
        "owlt": owlt,
    }
    _run(*obj, lambda client: client.add_contact(contact))
    click.echo(
        f"contact {sender} -> {receiver} added, from {format_dtn_time(start)} for {duration // 1000} s"
    )


@contacts.command("remove")
@subcommand_api
@click.argument("number", type=click.IntRange(min=1), metavar="N")
def contacts_remove(obj: tuple[str | None, str | None], number: int) -> None:
    """Remove the Nth contact of the listing (as `dtncloud contacts` shows it)."""

    async def work(client: Client) -> dict[str, Any]:
        plan = await client.contacts()
        if number > len(plan):
            raise CliError(f"there are {len(plan)} contacts, no contact {number}")
        contact = plan[number - 1]
        await client.remove_contact(contact)
        return contact

    removed = _run(*obj, work)
    click.echo(f"contact {removed['from']} -> {removed['to']} removed")


NODE_COMMANDS: tuple[click.Command, ...] = (
    send,
    recv,
    ping,
    status,
    bundles,
    peers,
    links,
    routes,
    contacts,
)
