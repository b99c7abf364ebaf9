"""``dtncloud bundle sign|verify|encrypt|decrypt``: BPSec (RFC 9172/9173) from the shell.

Signing adds a BIB-HMAC-SHA2 block, encrypting a BCB-AES-GCM block (:mod:`dtncloud.bpsec`).
Keys are given as hex digits, ``@FILE`` or ``env:NAME`` (see :class:`~dtncloud.cli._params.
KeyParam`). A receiver needs the key-encryption key (``--kek``) instead of the key itself when
the sender wrapped a key into the security block.
"""

from __future__ import annotations

import click

from dtncloud.bpv7 import BlockType
from dtncloud.cli._describe import block_label
from dtncloud.cli._output import CliError, about, emit_bundle, load_bundle, stdin_name
from dtncloud.cli._params import (
    BLOCK_LIST,
    EID_PARAM,
    KEY,
    LENIENT_OPTION,
    MAX_SIZE_OPTION,
    NameListParam,
)
from dtncloud.eid import EID

__all__ = ["COMMANDS"]

SCOPE_FLAGS = {"primary": 0x1, "target-header": 0x2, "security-header": 0x4}
ALL_SCOPE = "primary,target-header,security-header"
SHA_VARIANTS = {"256": 5, "384": 6, "512": 7}
AES_VARIANTS = {"128": 1, "256": 3}

_KEY_FORMS = "hex digits, @FILE (hex or raw bytes) or env:NAME (hex)"
_SCOPE_HELP = "What besides the target the security result covers (none for nothing)."


OUT_OPTION = click.option(
    "--out", default="-", show_default=True, metavar="FILE|-", help="Output file."
)
SCOPE_OPTION = click.option(
    "--scope",
    type=NameListParam(SCOPE_FLAGS, allow_none=True),
    default=ALL_SCOPE,
    show_default=True,
    help=_SCOPE_HELP,
)


def _receiver_key(key: bytes | None, kek: bytes | None) -> bytes:
    """The one key a receiver hands to bpsec: the KEK when the sender wrapped its key."""
    if (key is None) == (kek is None):
        raise click.UsageError(
            "give --key (the key itself) or --kek (when the key travels wrapped), one of them"
        )
    return key if key is not None else kek  # type: ignore[return-value]


@click.command(short_help="Add a BIB: sign blocks with HMAC-SHA2.")
@click.argument("file")
@click.option("--key", required=True, type=KEY, help=f"The HMAC key: {_KEY_FORMS}.")
@click.option(
    "--target", "targets", required=True, type=BLOCK_LIST, help="Blocks to sign, 0 = primary."
)
@click.option("--security-source", required=True, type=EID_PARAM, help="EID of the signer.")
@click.option(
    "--sha",
    type=click.Choice(list(SHA_VARIANTS)),
    default="384",
    show_default=True,
    help="HMAC-SHA2 variant.",
)
@SCOPE_OPTION
@click.option(
    "--kek", type=KEY, help=f"Wrap the HMAC key into the BIB with this KEK: {_KEY_FORMS}."
)
@OUT_OPTION
@MAX_SIZE_OPTION
def sign(
    file: str,
    key: bytes,
    targets: list[int],
    security_source: EID,
    sha: str,
    scope: int,
    kek: bytes | None,
    out: str,
    max_size: int,
) -> None:
    """Add a Block Integrity Block (BIB-HMAC-SHA2) over the --target blocks."""
    from dtncloud import bpsec

    original, _ = load_bundle(file, max_size=max_size)
    with about(stdin_name(file)):
        signed = bpsec.sign(
            original,
            targets,
            key=key,
            security_source=security_source,
            sha_variant=SHA_VARIANTS[sha],
            scope=scope,
            key_encryption_key=kek,
        )
    emit_bundle(out, signed, "signed bundle")


@click.command(short_help="Check the BIBs of a bundle.")
@click.argument("file")
@click.option("--key", type=KEY, help=f"The HMAC key: {_KEY_FORMS}.")
@click.option(
    "--kek", type=KEY, help=f"The KEK, for a BIB that carries a wrapped key: {_KEY_FORMS}."
)
@LENIENT_OPTION
@MAX_SIZE_OPTION
def verify(file: str, key: bytes | None, kek: bytes | None, lenient: bool, max_size: int) -> None:
    """Check every BIB of a bundle: one line per verified block, or exit 1 with the reason."""
    from dtncloud import bpsec

    keys = _receiver_key(key, kek)
    signed, _ = load_bundle(file, max_size=max_size, lenient=lenient)
    name = stdin_name(file)
    with about(name):
        checked = bpsec.verify(signed, keys)
    if not checked:
        raise CliError(f"{name}: no block integrity block (BIB): nothing to verify")
    for item in checked:
        click.echo(
            f"{name}: {block_label(signed, item.target)} verified by BIB block {item.bib} "
            f"(HMAC-SHA{item.sha_variant.digest_size * 8}, source {item.security_source})"
        )


@click.command(short_help="Add a BCB: encrypt blocks with AES-GCM.")
@click.argument("file")
@click.option("--key", required=True, type=KEY, help=f"The AES key, 16 or 32 bytes: {_KEY_FORMS}.")
@click.option(
    "--target", "targets", required=True, type=BLOCK_LIST, help="Blocks to encrypt (not 0)."
)
@click.option("--security-source", required=True, type=EID_PARAM, help="EID of the encrypter.")
@click.option(
    "--aes",
    type=click.Choice(list(AES_VARIANTS)),
    default="256",
    show_default=True,
    help="AES-GCM key size in bits.",
)
@SCOPE_OPTION
@click.option("--kek", type=KEY, help=f"Wrap the AES key into the BCB with this KEK: {_KEY_FORMS}.")
@click.option(
    "--iv",
    type=KEY,
    help="A fixed 12-byte IV in hex, only to reproduce known output "
    "[default: random]. Never reuse an IV with the same key.",
)
@OUT_OPTION
@MAX_SIZE_OPTION
def encrypt(
    file: str,
    key: bytes,
    targets: list[int],
    security_source: EID,
    aes: str,
    scope: int,
    kek: bytes | None,
    iv: bytes | None,
    out: str,
    max_size: int,
) -> None:
    """Add a Block Confidentiality Block (BCB-AES-GCM) that encrypts the --target blocks.

    A BIB that covers a target is encrypted with it, as RFC 9172 requires.
    """
    from dtncloud import bpsec

    original, _ = load_bundle(file, max_size=max_size)
    with about(stdin_name(file)):
        encrypted = bpsec.encrypt(
            original,
            targets,
            key=key,
            security_source=security_source,
            iv=iv,
            aes_variant=AES_VARIANTS[aes],
            scope=scope,
            key_encryption_key=kek,
        )
    emit_bundle(out, encrypted, "encrypted bundle")


@click.command(short_help="Decrypt the BCBs of a bundle.")
@click.argument("file")
@click.option("--key", type=KEY, help=f"The AES key: {_KEY_FORMS}.")
@click.option(
    "--kek", type=KEY, help=f"The KEK, for a BCB that carries a wrapped key: {_KEY_FORMS}."
)
@OUT_OPTION
@LENIENT_OPTION
@MAX_SIZE_OPTION
def decrypt(
    file: str, key: bytes | None, kek: bytes | None, out: str, lenient: bool, max_size: int
) -> None:
    """Decrypt the targets of every BCB and remove the BCBs; exit 1 if a check fails."""
    from dtncloud import bpsec

    keys = _receiver_key(key, kek)
    encrypted, _ = load_bundle(file, max_size=max_size, lenient=lenient)
    name = stdin_name(file)
    if encrypted.first_block_of_type(BlockType.BLOCK_CONFIDENTIALITY) is None:
        raise CliError(f"{name}: no block confidentiality block (BCB): nothing to decrypt")
    with about(name):
        plain = bpsec.decrypt(encrypted, keys)
    emit_bundle(out, plain, "decrypted bundle", validate=not lenient)


COMMANDS = (sign, verify, encrypt, decrypt)
