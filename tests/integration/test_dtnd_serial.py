"""Two daemons configured from TOML, joined only by a serial line (two ptys and a relay):
an application's bundle crosses the radio link and is delivered at the far end."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest

from dtncloud.daemon.config import load_config
from dtncloud.daemon.runner import Daemon
from tests.serial_ptys import Pty, Relay

pytestmark = pytest.mark.timeout(60)


def _write(directory: Path, name: str, peer: str, device: str) -> Path:
    directory.mkdir()
    path = directory / "dtncloud.toml"
    path.write_text(
        f'node_id = "dtn://{name}/"\n'
        'data_dir = "."\n'
        "[[cla]]\n"
        'type = "serial"\n'
        'name = "radio"\n'
        f'device = "{device}"\n'
        'max_frame_size = "120"\n'  # small frames: a bundle goes as several
        'reopen = "50ms"\n'
        "[[peer]]\n"
        f'node_id = "dtn://{peer}/"\n'
        'cla = "radio"\n'
        "[routing]\n"
        'router = "static"\n'
        f'default = "dtn://{peer}/"\n',
        encoding="utf-8",
    )
    return path


def test_a_bundle_crosses_a_serial_line_between_two_daemons() -> None:
    async def body(base: Path) -> None:
        a_pty, b_pty = Pty(), Pty()
        relay = Relay(a_pty, b_pty)
        a = Daemon(load_config(_write(base / "a", "a", "b", a_pty.name)))
        b = Daemon(load_config(_write(base / "b", "b", "a", b_pty.name)))
        try:
            async with a, b:
                async with await b.client() as inbox, await a.client() as sender:
                    endpoint = await inbox.register("inbox")
                    payload = bytes(range(256)) * 4  # 1 KiB: about ten frames of 120 bytes
                    await sender.send(endpoint, payload, source="dtn://a/app")
                    got = await asyncio.wait_for(anext(aiter(inbox.bundles(endpoint))), 30)
                    assert got.payload == payload and got.source == "dtn://a/app"
                    await got.ack()
                radio = b.node.links
                assert any(link.cla_name == "serial" for link in radio.values())
        finally:
            relay.close()
            a_pty.close()
            b_pty.close()

    # short directory: the API socket path must fit a Unix socket address
    with tempfile.TemporaryDirectory(prefix="dtnd-serial-") as base:
        asyncio.run(body(Path(base)))
