"""Plumbing shared by every ``dtncloud`` command: one-line errors, inputs, atomic outputs.

The rule from ARCHITECTURE.md ("Errors") lives here: a user who gives bad input sees one line,
``dtncloud: error: <where>: <what>``, never a traceback. :class:`DtnGroup` turns every
:class:`~dtncloud.errors.DtnError`, every :class:`OSError` and every click usage error that a
command lets escape into that line (exit status 1, or 2 for usage errors); ``--debug`` lets the
original exception through instead. Commands that know which file an error is about wrap the
work in :func:`about`, so the line names the file.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO, cast

import click

from dtncloud.bpv7 import (
    DEFAULT_MAX_BUNDLE_SIZE,
    Bundle,
    StatusReportReason,
    decode_bundle,
    encode_bundle,
)
from dtncloud.errors import BundleDecodeError, BundleTooLarge, DtnError, SecurityError

PROG = "dtncloud"
#: How an input read from stdin is named.
STDIN_NAME = "<stdin>"
#: Key in ``click.Context.meta`` (shared by every context of one run) set by ``--debug``.
DEBUG_KEY = "dtncloud.debug"


# click >= 8.2 shows a group's help through this usage error when no command is given.
_NoArgsIsHelp: type[click.UsageError] = getattr(
    click.exceptions, "NoArgsIsHelpError", type("_NeverRaised", (click.UsageError,), {})
)


class CliError(click.ClickException):
    """A failure to report as one line ``dtncloud: error: <message>``; exit status 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(f"{PROG}: error: {self.message}", err=True)


class CliUsageError(click.UsageError):
    """A usage error reported on one line; exit status 2."""

    def show(self, file: Any = None) -> None:
        click.echo(f"{PROG}: error: {self.message}", err=True)


def _usage_line(exc: click.UsageError) -> str:
    text = exc.format_message().strip().rstrip(".")
    text = text[:1].lower() + text[1:]
    if exc.ctx is None:
        return text
    path = exc.ctx.command_path
    command = path.partition(" ")[2]
    hint = f" (try '{path} --help')"
    return f"{command}: {text}{hint}" if command else f"{text}{hint}"


def _debugging() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get(DEBUG_KEY))


def _reason_text(reason: int) -> str:
    try:
        name = StatusReportReason(reason).name.lower().replace("_", " ")
    except ValueError:
        name = "unassigned"
    return f"status report reason {reason}, {name}"


def explain(exc: BaseException) -> str:
    """What went wrong, in words, for one error line (without the ``where`` prefix)."""
    if isinstance(exc, OSError):
        what = exc.strerror or str(exc) or type(exc).__name__
        return what[:1].lower() + what[1:]
    text = str(exc) or type(exc).__name__
    if isinstance(exc, BundleDecodeError):
        return f"not a valid bundle: {text} ({_reason_text(exc.reason)})"
    if isinstance(exc, SecurityError):
        return f"{text} ({_reason_text(exc.reason)})"
    return text


def error_line(where: str | None, exc: BaseException) -> str:
    """``<where>: <what>``; an OSError about another file names that file instead."""
    if isinstance(exc, OSError) and exc.filename is not None and str(exc.filename) != where:
        where = str(exc.filename)
    return f"{where}: {explain(exc)}" if where else explain(exc)


@contextmanager
def about(where: str) -> Iterator[None]:
    """Report a DtnError or OSError raised inside the block as ``<where>: <what>``."""
    try:
        yield
    except click.ClickException:
        raise
    except (DtnError, OSError) as exc:
        if _debugging() or getattr(exc, "errno", None) == errno.EPIPE:
            raise
        raise CliError(error_line(where, exc)) from exc


class DtnGroup(click.Group):
    """The top-level group: maps errors to one line (see the module docstring)."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            if isinstance(exc, CliUsageError | _NoArgsIsHelp):
                raise
            raise CliUsageError(_usage_line(exc), exc.ctx) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            if isinstance(exc, CliUsageError | _NoArgsIsHelp):
                raise
            raise CliUsageError(_usage_line(exc), exc.ctx) from exc
        except click.ClickException:
            raise
        except (DtnError, OSError) as exc:
            # A broken pipe (``dtncloud ... | head``) is click's to handle quietly.
            if ctx.meta.get(DEBUG_KEY) or getattr(exc, "errno", None) == errno.EPIPE:
                raise
            raise CliError(error_line(None, exc)) from exc


# -- inputs -----------------------------------------------------------------------------------


def stdin_name(path: str) -> str:
    """How errors and dumps name an input: ``<stdin>`` for ``-``."""
    return STDIN_NAME if path == "-" else path


def _binary_stream(name: str) -> BinaryIO:
    # click 8.5 deprecates get_binary_stream; the text streams' buffers are what it returned
    # (and click's test runner swaps sys.stdin/stdout for streams that have one too).
    stream = sys.stdin if name == "stdin" else sys.stdout
    return cast(BinaryIO, stream.buffer)


def read_input(path: str, max_size: int, *, too_large: type[DtnError] = BundleTooLarge) -> bytes:
    """The bytes of ``path`` (``-`` is stdin), refusing more than ``max_size`` bytes without
    reading them (raises ``too_large``)."""
    if path == "-":
        data = _binary_stream("stdin").read(max_size + 1)
    else:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > max_size:
                raise too_large(
                    f"file of {info.st_size} bytes exceeds the limit of {max_size} bytes"
                )
            data = handle.read(max_size + 1)
    if len(data) > max_size:
        raise too_large(f"input is larger than the limit of {max_size} bytes")
    return data


def load_bundle(
    path: str, *, max_size: int = DEFAULT_MAX_BUNDLE_SIZE, lenient: bool = False
) -> tuple[Bundle, bytes]:
    """Read and decode one BPv7 bundle file (``-`` is stdin); errors name the file."""
    with about(stdin_name(path)):
        data = read_input(path, max_size)
        return decode_bundle(data, max_size=max_size, lenient=lenient), data


# -- outputs ----------------------------------------------------------------------------------


def _umask() -> int:
    # The umask can only be read by setting it; the CLI is single-threaded.
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sync_directory(directory: str | Path) -> None:
    """Make a rename into ``directory`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory, flushed to
    disk and renamed over ``path``, the rename synced too: readers see the old file or the
    whole new one, and after a crash the new one is there if this returned."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        # Name the file the user asked for, not the temporary name.
        raise OSError(exc.errno, exc.strerror, str(target)) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
        sync_directory(target.parent)
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def write_output(out: str, data: bytes) -> bool:
    """Write a bundle to the file ``out`` atomically, or to stdout for ``-``.

    Returns whether it went to a file (so the caller may print a summary on stdout). Refuses
    to write binary data to a terminal.
    """
    if out == "-":
        stream = _binary_stream("stdout")
        if stream.isatty():
            raise CliError(
                "refusing to write a binary bundle to a terminal: use --out FILE or a pipe"
            )
        stream.write(data)
        stream.flush()
        return False
    with about(out):
        if os.path.isdir(out):
            raise IsADirectoryError(errno.EISDIR, "is a directory (expected a file name)", out)
        atomic_write(out, data)
    return True


def emit_bundle(out: str, bundle: Bundle, what: str, *, validate: bool = True) -> bytes:
    """Encode ``bundle``, write it to ``out`` (``-``: stdout) and, for a file, say so on
    stdout. ``what`` names the bundle in an error line; ``validate=False`` writes a bundle
    that only lenient decoding accepts, as it came in."""
    with about(what):
        data = encode_bundle(bundle, validate=validate)
    if write_output(out, data):
        click.echo(f"wrote {out}: {len(data)} bytes, bundle {bundle.id}")
    return data
