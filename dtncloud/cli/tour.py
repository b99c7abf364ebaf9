"""``dtncloud tour``: one sensor reading's trip through the codec, from sensor to cloud.

The tour runs the bundle library end to end on embedded defaults: build a bundle, encode it, sign it
(BIB), encrypt it (BCB), inspect it, fragment it for a small link, shuffle and reassemble the
fragments, decrypt, verify, and check that the payload arrived intact. It prints what it
measures on the way and leaves every intermediate bundle in a directory, for
``dtncloud bundle inspect``. Any failed step ends the tour with exit status 1.
(``dtncloud demo`` shows the same trip between three running nodes.)
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import click

from dtncloud.bpv7 import (
    BlockType,
    Bundle,
    CrcType,
    decode_bundle,
    encode_bundle,
)
from dtncloud.cli._describe import block_label, describe_bundle
from dtncloud.cli._output import DEBUG_KEY, CliError, about, atomic_write, error_line
from dtncloud.cli._params import SIZE
from dtncloud.dtntime import dtn_time_from_unix
from dtncloud.errors import DecryptionFailed, DtnError

__all__ = ["tour"]

SENSOR = "dtn://sensor-7/soil"
SENSOR_NODE = "dtn://sensor-7/"
CLOUD = "dtn://cloud/ingest"
# An Iridium SBD message holds 340 bytes. 200-byte frames would not do: the first fragment
# carries every extension block, and primary block + BIB + BCB alone take about 290 bytes.
FRAME_SIZE = 340
# Fixed, published key material so that the tour can be repeated and its files checked by
# hand. Real deployments draw keys from a key store and let dtncloud draw a fresh IV each time.
HMAC_KEY = hashlib.sha256(b"dtncloud demo: integrity key").digest()
AES_KEY = hashlib.sha256(b"dtncloud demo: content key").digest()
IV = bytes.fromhex("d7c10ad0000000000000002a")
SHUFFLE_SEED = 7

T = TypeVar("T")


def _reading() -> bytes:
    """A day of hourly readings from a soil sensor: about a kilobyte of JSON."""
    rows = [
        {
            "hour": h,
            "soil_moisture": round(0.31 - 0.004 * h + 0.0001 * h * h, 4),
            "temp_c": round(11.5 + 6.0 * (1 - abs(h - 14) / 14), 2),
        }
        for h in range(24)
    ]
    return json.dumps(
        {"sensor": "field-sensor-7", "site": "north-plot", "hourly": rows}, separators=(",", ":")
    ).encode()


def _elapsed(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    return f"{seconds * 1e3:.2f} ms"


class _Narrator:
    """Numbers, times and prints the steps; remembers which step is running."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.step = 0
        self.current = "start"
        self.total = 0.0

    def begin(self, name: str) -> None:
        self.current = name

    def timed(self, work: Callable[[], T]) -> tuple[T, float]:
        start = time.perf_counter()
        result = work()
        elapsed = time.perf_counter() - start
        self.total += elapsed
        return result, elapsed

    def say(self, title: str, *lines: str) -> None:
        self.step += 1
        click.echo(f"\n{self.step:>2}. {title}")
        for line in lines:
            click.echo(f"    {line}")

    def save(self, name: str, data: bytes) -> str:
        path = self.out_dir / name
        atomic_write(path, data)
        return str(path)


@click.command(short_help="Watch a sensor reading travel to the cloud, step by step.")
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    help="Where to leave the bundle files [default: a new temporary directory].",
)
@click.option(
    "--frame-size",
    type=SIZE,
    default=FRAME_SIZE,
    show_default=True,
    help="Largest bundle the small link carries, in bytes.",
)
def tour(out_dir: str | None, frame_size: int) -> None:
    """Send a sensor reading to the cloud: build, sign, encrypt, fragment, reassemble,
    decrypt, verify. No arguments needed; exit status 1 if any step fails."""
    if out_dir is None:
        directory = Path(tempfile.mkdtemp(prefix="dtncloud-tour-"))
    else:
        directory = Path(out_dir)
        with about(out_dir):
            directory.mkdir(parents=True, exist_ok=True)
    narrator = _Narrator(directory)
    try:
        _run(narrator, frame_size)
    except (DtnError, OSError) as exc:
        if click.get_current_context().meta.get(DEBUG_KEY):
            raise
        where = narrator.current
        raise CliError(f"tour: {where} failed: {error_line(None, exc)}") from exc


def _run(n: _Narrator, frame_size: int) -> None:
    from dtncloud import bpsec
    from dtncloud.bpv7.fragment import fragment_bundle, reassemble

    directory = n.out_dir
    click.echo("dtncloud tour: a soil sensor in a field sends a day of readings to the cloud.")
    click.echo(f"Bundle files go to {directory}")
    click.echo("Keys and the IV are fixed so that the tour can be repeated:")
    click.echo("fine for a demonstration, never for real traffic.")

    n.begin("build")
    payload = _reading()
    # The CLI is a shell: it reads the wall clock and hands the time to the core.
    now = dtn_time_from_unix(datetime.now(UTC).timestamp())
    original, took = n.timed(
        lambda: Bundle.create(
            source=SENSOR,
            destination=CLOUD,
            payload=payload,
            creation_time=now,
            sequence=1,
            lifetime=6 * 3_600_000,
            hop_limit=16,
            block_crc_type=CrcType.CRC32C,
        )
    )
    n.say(
        "build",
        f"from {SENSOR} to {CLOUD}: a {len(payload)}-byte JSON payload,",
        "lifetime 6h, hop limit 16, CRC-32C on every block",
        f"bundle ID {original.id} (built in {_elapsed(took)})",
    )

    n.begin("encode")
    plain, took = n.timed(lambda: encode_bundle(original))
    decoded, took_back = n.timed(lambda: decode_bundle(plain))
    if decoded != original:
        raise CliError("tour: the decoded bundle differs from the one encoded")
    path = n.save("01-plain.bundle", plain)
    n.say(
        "encode",
        f"{len(plain)} bytes of CBOR ({len(plain) - len(payload)} bytes of blocks around the "
        f"payload) in {_elapsed(took)}",
        f"decoded back, identical, in {_elapsed(took_back)}",
        f"wrote {path}",
    )

    n.begin("sign")
    signed, took = n.timed(
        lambda: bpsec.sign(
            original, [0, 1], key=HMAC_KEY, security_source=SENSOR_NODE, sha_variant=5
        )
    )
    signed_bytes = encode_bundle(signed)
    bib = next(signed.blocks_of_type(BlockType.BLOCK_INTEGRITY))
    path = n.save("02-signed.bundle", signed_bytes)
    n.say(
        "sign",
        f"BIB block {bib.number}: HMAC-SHA256 over the primary block and the payload",
        f"{len(signed_bytes)} bytes (+{len(signed_bytes) - len(plain)}) in {_elapsed(took)}",
        f"wrote {path}",
    )

    n.begin("encrypt")
    encrypted, took = n.timed(
        lambda: bpsec.encrypt(
            signed, [1], key=AES_KEY, security_source=SENSOR_NODE, iv=IV, aes_variant=3
        )
    )
    sealed = encode_bundle(encrypted)
    bcb = next(encrypted.blocks_of_type(BlockType.BLOCK_CONFIDENTIALITY))
    path = n.save("03-encrypted.bundle", sealed)
    n.say(
        "encrypt",
        f"BCB block {bcb.number}: AES-256-GCM over the payload and, as RFC 9172 requires,",
        f"the BIB that covers it; {len(sealed)} bytes (+{len(sealed) - len(signed_bytes)}) "
        f"in {_elapsed(took)}",
        f"wrote {path}",
    )

    n.begin("inspect")
    lines, took = n.timed(lambda: describe_bundle(decode_bundle(sealed), sealed, path))
    n.say(f"inspect: decoded and described in {_elapsed(took)}", *lines)

    n.begin("fragment")
    pieces, took = n.timed(lambda: fragment_bundle(encrypted, frame_size))
    frames = [encode_bundle(piece) for piece in pieces]
    for number, data in enumerate(frames):
        n.save(f"04-fragment-{number:02d}.bundle", data)
    overhead = sum(map(len, frames)) - len(sealed)
    n.say(
        f"fragment for a link that carries {frame_size} bytes at a time (an Iridium SBD message)",
        f"{len(frames)} fragments of {min(map(len, frames))} to {max(map(len, frames))} bytes "
        f"in {_elapsed(took)}",
        f"{overhead} bytes of repeated headers: {overhead / len(sealed):.0%} more on the link",
        f"wrote {directory / '04-fragment-NN.bundle'} for NN = 00 to {len(frames) - 1:02d}",
    )

    n.begin("reassemble")
    order = list(range(len(frames)))
    random.Random(SHUFFLE_SEED).shuffle(order)
    arrived = [decode_bundle(frames[i]) for i in order]
    whole, took = n.timed(lambda: reassemble(arrived))
    rebuilt = encode_bundle(whole)
    path = n.save("05-reassembled.bundle", rebuilt)
    n.say(
        "shuffle and reassemble",
        f"the fragments arrive in the order {', '.join(map(str, order))}",
        f"reassembled in {_elapsed(took)}: {len(rebuilt)} bytes, "
        f"{'identical to' if rebuilt == sealed else 'DIFFERENT from'} the encrypted bundle",
        f"wrote {path}",
    )
    if rebuilt != sealed:
        raise CliError("tour: the reassembled bundle differs from the one fragmented")

    n.begin("tamper check")
    altered = bytearray(whole.payload)
    altered[len(altered) // 2] ^= 0x01
    tampered = whole.replace_block(whole.payload_block.with_data(bytes(altered)))
    try:
        bpsec.decrypt(tampered, AES_KEY)
    except DecryptionFailed as exc:
        n.say("tamper check", "a copy with one flipped ciphertext bit is refused:", str(exc))
    else:
        raise CliError("tour: decryption accepted a tampered payload")

    n.begin("decrypt")
    opened, took = n.timed(lambda: bpsec.decrypt(whole, AES_KEY))
    opened_bytes = encode_bundle(opened)
    path = n.save("06-decrypted.bundle", opened_bytes)
    n.say("decrypt", f"{len(opened_bytes)} bytes in {_elapsed(took)}", f"wrote {path}")

    n.begin("verify")
    checked, took = n.timed(lambda: bpsec.verify(opened, HMAC_KEY))
    n.say(
        "verify",
        *(
            f"{block_label(opened, item.target)} verified by BIB block {item.bib}"
            for item in checked
        ),
        f"in {_elapsed(took)}",
    )

    n.begin("deliver")
    if opened.payload != payload:
        raise CliError("tour: the payload that arrived differs from the one sent")
    digest = hashlib.sha256(opened.payload).hexdigest()
    n.say(
        "deliver",
        f"payload intact: {len(opened.payload)} bytes, sha256 {digest[:16]}..., "
        "the same as the sensor sent",
    )

    click.echo(f"\nDone: {n.step} steps, {_elapsed(n.total)} of library time in all. Look closer:")
    click.echo(f"  dtncloud bundle inspect {directory / '03-encrypted.bundle'}")
    click.echo(f"  dtncloud bundle verify {directory / '02-signed.bundle'} --key {HMAC_KEY.hex()}")
    click.echo(
        f"  dtncloud bundle decrypt {directory / '03-encrypted.bundle'} --key {AES_KEY.hex()} "
        "--out decrypted.bundle"
    )
