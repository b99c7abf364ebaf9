"""Running ``dtnd`` and ``dtncloud`` as real processes, for the integration tests.

A :class:`Dtnd` is one daemon process started with ``python -m dtncloud.daemon.main`` (so
the tests do not depend on PATH), its log on stderr going to a file beside its
configuration. It counts as ready once it logs ``dtnd <node> up``, which it does after the
store, the links, the API socket and the metrics endpoint are all open.

Node directories live under :func:`short_tempdir`: API socket paths must stay under about
107 bytes, which pytest's ``tmp_path`` may not.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from dtncloud.client import Client

T = TypeVar("T")

REPO = Path(__file__).resolve().parents[2]
DTND = [sys.executable, "-m", "dtncloud.daemon.main"]
DTNCLOUD = [sys.executable, "-m", "dtncloud"]
#: Generous: CI runs these on two loaded cores.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0
CLI_TIMEOUT = 60.0

_PYCACHE = os.path.join(tempfile.gettempdir(), f"dtncloud-tests-pycache-{os.getuid()}")
_UP = re.compile(r"dtnd \S+ up: ")
_METRICS = re.compile(r"metrics served on http://\S+:(\d+)/metrics")
_TCPCL = re.compile(r"TCPCL listening on port (\d+)")


def environment(**changes: str | None) -> dict[str, str]:
    """This process's environment for a child, without DTNCLOUD_API/TOKEN unless given."""
    env = {k: v for k, v in os.environ.items() if k not in ("DTNCLOUD_API", "DTNCLOUD_TOKEN")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    # Every test starts several interpreters: let them share compiled modules (kept out of
    # the source tree) even where PYTHONDONTWRITEBYTECODE is set, so each starts faster.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = _PYCACHE
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@contextmanager
def short_tempdir(prefix: str = "dtnd-") -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def free_port() -> int:
    """A TCP port free a moment ago, for a peer's address that must be known in advance."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def poll(condition: Callable[[], T], what: str, timeout: float = START_TIMEOUT) -> T:
    """Call ``condition`` until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)
    return result


def write_config(
    directory: Path,
    node_id: str,
    *,
    listen: str = "127.0.0.1:0",
    peers: Sequence[tuple[str, str]] = (),
    routes: Sequence[tuple[str, str]] = (),
    extra: str = "",
) -> Path:
    """A configuration file in ``directory`` (the node's data directory too): one TCPCL
    that reconnects quickly to ``peers`` ((node ID, address) pairs), the static router
    with ``routes`` ((pattern, via) pairs), and ``extra`` TOML appended."""
    directory.mkdir(parents=True, exist_ok=True)
    text = (
        f'node_id = "{node_id}"\ndata_dir = "."\n\n'
        f'[[cla]]\ntype = "tcpcl"\nlisten = "{listen}"\n'
        'reconnect = "100ms"\nreconnect_max = "500ms"\n\n'
    )
    for peer, address in peers:
        text += f'[[peer]]\nnode_id = "{peer}"\ncla = "tcpcl"\naddress = "{address}"\n\n'
    text += '[routing]\nrouter = "static"\n'
    for pattern, via in routes:
        text += f'\n[[routing.route]]\ndestination = "{pattern}"\nvia = "{via}"\n'
    path = directory / "dtncloud.toml"
    path.write_text(text + "\n" + extra, encoding="utf-8")
    return path


class Dtnd:
    """One ``dtnd`` process. ``args`` follow ``dtnd`` (e.g. ``["-c", path]``); its stderr
    goes to ``log_path``."""

    def __init__(self, args: Sequence[str], log_path: Path, api: Path) -> None:
        self.args = list(args)
        self.log_path = log_path
        self.api = api
        # The log may hold earlier runs of the same node: this one's starts here.
        self._log_from = log_path.stat().st_size if log_path.exists() else 0
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*DTND, *self.args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=REPO,
                env=environment(),
            )

    @classmethod
    def start(cls, config: Path, *args: str) -> Dtnd:
        """Start ``dtnd -c config`` and wait until it is up; its API socket is the
        ``api.sock`` in the configuration's directory (the default)."""
        daemon = cls(
            ["-c", str(config), *args], config.with_suffix(".log"), config.parent / "api.sock"
        )
        daemon.wait_up()
        return daemon

    @property
    def log(self) -> str:
        """What this run logged."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_from)
            return log.read().decode("utf-8", errors="replace")

    def wait_up(self) -> None:
        def up() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"dtnd exited with status {self.process.returncode} while starting:\n{self.log}"
                )
            return bool(_UP.search(self.log))

        poll(up, f"dtnd {self.args} to start")

    @property
    def metrics_port(self) -> int:
        match = _METRICS.search(self.log)
        assert match, f"no metrics endpoint in the log:\n{self.log}"
        return int(match.group(1))

    @property
    def tcpcl_port(self) -> int:
        match = _TCPCL.search(self.log)
        assert match, f"no TCPCL listener in the log:\n{self.log}"
        return int(match.group(1))

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Signal the daemon and wait for it to exit; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(STOP_TIMEOUT)

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as a power cut."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(STOP_TIMEOUT)

    def __enter__(self) -> Dtnd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()

    def call(self, work: Callable[[Client], Any], timeout: float = START_TIMEOUT) -> Any:
        """Run ``await work(client)`` on a fresh API connection to this daemon."""
        return call_api(self.api, work, timeout)


def call_api(api: Path, work: Callable[[Client], Any], timeout: float = START_TIMEOUT) -> Any:
    async def session() -> Any:
        async with await Client.connect(str(api)) as client:
            return await work(client)

    async def bounded() -> Any:
        return await asyncio.wait_for(session(), timeout)

    return asyncio.run(bounded())


def dtncloud(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``dtncloud ARGS`` to completion; text output."""
    return subprocess.run(
        [*DTNCLOUD, *args],
        input=None if stdin is None else stdin.decode(),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        cwd=REPO,
        env=env if env is not None else environment(),
    )


def dtnd_run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``dtnd ARGS`` to completion (for commands that end by themselves)."""
    return subprocess.run(
        [*DTND, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        cwd=REPO,
        env=environment(),
    )


def one_line(text: str) -> str:
    """The only line of ``text``, after checking that there is exactly one."""
    lines = text.splitlines()
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{text}"
    return lines[0]
