"""``dtncloud bundle``: build, inspect, fragment and reassemble bundles from the shell.

The security commands (sign, verify, encrypt, decrypt) live in :mod:`dtncloud.cli.security`
and join this group at the bottom of this module.
"""

from __future__ import annotations

import json
import os
from contextlib import suppress
from pathlib import Path
from typing import Any

import click

from dtncloud.bpv7 import (
    DEFAULT_MAX_BUNDLE_SIZE,
    Bundle,
    BundleFlag,
    CrcType,
    decode_bundle,
    encode_bundle,
)
from dtncloud.cli import security
from dtncloud.cli._describe import bundle_json, describe_bundle
from dtncloud.cli._output import (
    CliError,
    about,
    emit_bundle,
    load_bundle,
    read_input,
    stdin_name,
    write_output,
)
from dtncloud.cli._params import (
    CREATION_TIME,
    DURATION,
    EID_PARAM,
    LENIENT_OPTION,
    MAX_SIZE_OPTION,
    SIZE,
    CrcParam,
    NameListParam,
)
from dtncloud.eid import EID
from dtncloud.errors import BundleDecodeError, BundleEncodeError, ConfigError, InvalidBundle

__all__ = ["bundle"]

REPORT_FLAGS = {
    "reception": BundleFlag.REPORT_RECEPTION,
    "forwarding": BundleFlag.REPORT_FORWARDING,
    "delivery": BundleFlag.REPORT_DELIVERY,
    "deletion": BundleFlag.REPORT_DELETION,
}


@click.group()
def bundle() -> None:
    """Build, inspect, secure, fragment and reassemble BPv7 bundles."""


@bundle.command(short_help="Build one bundle.")
@click.option("--source", required=True, type=EID_PARAM, help="Source EID (dtn:none: anonymous).")
@click.option("--dest", "destination", required=True, type=EID_PARAM, help="Destination EID.")
@click.option("--payload-file", metavar="FILE|-", help="Read the payload from FILE (- is stdin).")
@click.option("--text", help="Use this text (UTF-8) as the payload.")
@click.option("--lifetime", type=DURATION, default="24h", show_default=True, help="90s, 1h, 2d...")
@click.option("--crc", type=CrcParam(), default="32", show_default=True, help="Primary block CRC.")
@click.option(
    "--block-crc", type=CrcParam(), default="none", show_default=True, help="CRC of other blocks."
)
@click.option("--hop-limit", type=click.IntRange(1, 255), help="Add a hop count block (1-255).")
@click.option("--report-to", type=EID_PARAM, help="Report-to EID [default: the source node].")
@click.option(
    "--report",
    "reports",
    type=NameListParam(REPORT_FLAGS),
    help="Ask for status reports: reception,forwarding,delivery,deletion.",
)
@click.option(
    "--creation-time",
    type=CREATION_TIME,
    default="now",
    show_default=True,
    help="now, 0 (no clock: adds a bundle age block), an ISO 8601 time or DTN milliseconds.",
)
@click.option("--sequence", type=click.IntRange(0, 2**64 - 1), default=0, show_default=True)
@click.option("--must-not-fragment", is_flag=True, help="Forbid fragmentation.")
@click.option("--out", default="-", show_default=True, metavar="FILE|-", help="Output file.")
def create(
    source: EID,
    destination: EID,
    payload_file: str | None,
    text: str | None,
    lifetime: int,
    crc: CrcType,
    block_crc: CrcType,
    hop_limit: int | None,
    report_to: EID | None,
    reports: int | None,
    creation_time: int,
    sequence: int,
    must_not_fragment: bool,
    out: str,
) -> None:
    """Build one bundle and write it to --out (stdout by default, never to a terminal).

    The payload comes from --payload-file or --text; without either it is empty.
    """
    if payload_file is not None and text is not None:
        raise click.UsageError("give --payload-file or --text, not both")
    payload = b""
    if text is not None:
        payload = text.encode("utf-8")
    elif payload_file is not None:
        with about(stdin_name(payload_file)):
            payload = read_input(payload_file, DEFAULT_MAX_BUNDLE_SIZE, too_large=ConfigError)
    flags = BundleFlag(reports or 0)
    if must_not_fragment:
        flags |= BundleFlag.MUST_NOT_FRAGMENT
    try:
        new = Bundle.create(
            source=source,
            destination=destination,
            payload=payload,
            creation_time=creation_time,
            sequence=sequence,
            lifetime=lifetime,
            report_to=report_to,
            flags=flags,
            crc_type=crc,
            block_crc_type=block_crc,
            hop_limit=hop_limit,
            # Without a clock the bundle's age must travel with it (RFC 9171 4.2.6).
            bundle_age=0 if creation_time == 0 else None,
        )
        data = encode_bundle(new)
    except (InvalidBundle, BundleEncodeError) as exc:
        raise CliError(f"bundle create: {exc}") from exc
    if write_output(out, data):
        click.echo(f"wrote {out}: {len(data)} bytes, bundle {new.id}")


@bundle.command(short_help="Show what is in bundle files.")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line per file.")
@LENIENT_OPTION
@MAX_SIZE_OPTION
@click.pass_context
def inspect(
    ctx: click.Context, files: tuple[str, ...], as_json: bool, lenient: bool, max_size: int
) -> None:
    """Show what is in bundle files (- is stdin); BPv6 bundles are recognised too.

    A file that cannot be read or decoded gets one error line on stderr; the other files are
    still shown, and the exit status is 1.
    """
    failures = 0
    for index, path in enumerate(files):
        name = stdin_name(path)
        try:
            with about(name):
                data = read_input(path, max_size)
                report = _inspect_one(data, name, as_json, lenient, max_size)
        except CliError as exc:
            exc.show()
            failures += 1
            continue
        if as_json:
            click.echo(json.dumps(report))
        else:
            if index:
                click.echo()
            click.echo("\n".join(report))
    if failures:
        ctx.exit(1)


def _inspect_one(data: bytes, name: str, as_json: bool, lenient: bool, max_size: int) -> Any:
    if data[:1] == b"\x06":
        return _inspect_v6(data, name, as_json, max_size)
    try:
        decoded = decode_bundle(data, max_size=max_size, lenient=lenient)
    except BundleDecodeError as exc:
        if lenient or not _lenient_accepts(data, max_size):
            raise
        raise type(exc)(f"{exc}; --lenient accepts it", reason=exc.reason) from exc
    if as_json:
        return {"file": name, **bundle_json(decoded, data, lenient=lenient)}
    return describe_bundle(decoded, data, name, lenient=lenient)


def _lenient_accepts(data: bytes, max_size: int) -> bool:
    try:
        decode_bundle(data, max_size=max_size, lenient=True)
    except BundleDecodeError:
        return False
    return True


def _inspect_v6(data: bytes, name: str, as_json: bool, max_size: int) -> Any:
    try:
        from dtncloud import bpv6
        from dtncloud.cli._describe_v6 import bundle_json_v6, describe_bundle_v6
    except ImportError as exc:
        raise CliError(f"{name}: a BPv6 bundle, but dtncloud.bpv6 is not available") from exc
    decoded = bpv6.decode_bundle(data, max_size=max_size)
    if as_json:
        return {"file": name, **bundle_json_v6(decoded, data)}
    return describe_bundle_v6(decoded, data, name)


@bundle.command(short_help="Split a bundle into fragments.")
@click.argument("file")
@click.option(
    "--max-size",
    type=SIZE,
    required=True,
    help="Largest encoded size of one fragment in bytes (suffixes k, M).",
)
@click.option("--out-dir", help="Write the fragments here [default: next to FILE].")
def fragment(file: str, max_size: int, out_dir: str | None) -> None:
    """Split a bundle into fragments of at most --max-size bytes each.

    The fragments are named FILE.frag0000, FILE.frag0001, ...
    """
    from dtncloud.bpv7.fragment import fragment_bundle

    whole, _ = load_bundle(file)
    with about(file):
        pieces = [(piece, encode_bundle(piece)) for piece in fragment_bundle(whole, max_size)]
    directory = Path(out_dir) if out_dir is not None else Path(file).parent
    if out_dir is not None:
        with about(out_dir):
            directory.mkdir(parents=True, exist_ok=True)
    base = "stdin" if file == "-" else Path(file).name
    written: list[str] = []
    try:
        for number, (_, data) in enumerate(pieces):
            path = str(directory / f"{base}.frag{number:04d}")
            write_output(path, data)
            written.append(path)
    except BaseException:
        # A partial set of fragments is worse than none: it cannot be reassembled.
        for path in written:
            with suppress(OSError):
                os.unlink(path)
        raise
    if not pieces[0][0].primary.is_fragment:
        click.echo(f"wrote {written[0]}: {len(pieces[0][1])} bytes; it fits, not fragmented")
        return
    for path, (piece, data) in zip(written, pieces, strict=True):
        offset = piece.primary.fragment_offset or 0
        click.echo(
            f"wrote {path}: {len(data)} bytes, payload bytes {offset}.."
            f"{offset + len(piece.payload)} of {piece.primary.total_adu_length}"
        )


@bundle.command(short_help="Rebuild a bundle from its fragments.")
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@click.option("--out", required=True, metavar="FILE|-", help="Write the whole bundle here.")
@MAX_SIZE_OPTION
def reassemble(files: tuple[str, ...], out: str, max_size: int) -> None:
    """Rebuild a bundle from its fragments, given in any order."""
    from dtncloud.bpv7.fragment import reassemble as reassemble_fragments

    pieces = [load_bundle(path, max_size=max_size)[0] for path in files]
    with about(f"{len(files)} fragments"):
        whole = reassemble_fragments(pieces)
    emit_bundle(out, whole, "reassembled bundle")


for _command in security.COMMANDS:
    bundle.add_command(_command)
