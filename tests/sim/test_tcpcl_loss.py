"""Link loss in mode "tcpcl": lost chunks of the byte pipe are sent again after a
retransmission timeout, in order, so transfers complete later but intact."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from dtncloud.sim.tcpcl_link import TcpclLink, retransmission_timeout
from dtncloud.sim.world import Simulation


class Scripted(random.Random):
    """A generator whose ``random()`` loses (0.0) the draws numbered in ``lose`` (from 1)
    and keeps (0.99) the others."""

    def __init__(self, lose: set[int]) -> None:
        super().__init__(0)
        self.lose = lose
        self.draws = 0

    def random(self) -> float:
        self.draws += 1
        return 0.0 if self.draws in self.lose else 0.99


def _sim(seed: int = 1) -> Simulation:
    sim = Simulation(seed=seed, record_occupancy_every_ms=None)
    sim.add_node("a", router="direct")
    sim.add_node("b", router="direct")
    return sim


def _run(
    loss: float, *, seed: int = 1, size: int = 20_000, rng: random.Random | None = None, **link: Any
) -> Simulation:
    sim = _sim(seed)
    if rng is not None:
        sim.network.rng = rng
    model = {"rate_bytes_s": 10_000, "delay_ms": 100, **link}
    sim.contact(10_000, 600_000, "a", "b", mode="tcpcl", loss=loss, **model)
    sim.create_message(5_000, "a", "b", size, message_id="M1")
    sim.run()
    return sim


def _delivered(sim: Simulation) -> int:
    at = sim.stats.messages["M1"].delivered_at
    assert at is not None
    return at


def test_the_retransmission_timeout() -> None:
    assert retransmission_timeout(0) == 200
    assert retransmission_timeout(50) == 200
    assert retransmission_timeout(100) == 400  # twice the round trip of 200 ms


def test_no_loss_draws_nothing_and_changes_nothing() -> None:
    scripted = Scripted(set())
    assert _delivered(_run(0.0, rng=scripted)) == _delivered(_run(0.0))
    assert scripted.draws == 0


def _links(monkeypatch: pytest.MonkeyPatch) -> list[TcpclLink]:
    """Every TCPCL link opened from now on."""
    opened: list[TcpclLink] = []
    open_link = TcpclLink.open

    def spy(self: TcpclLink) -> None:
        opened.append(self)
        open_link(self)

    monkeypatch.setattr(TcpclLink, "open", spy)
    return opened


def test_one_lost_chunk_arrives_one_timeout_later(monkeypatch: pytest.MonkeyPatch) -> None:
    # no rate limit: each write is one chunk; the first (the contact header) is lost once
    lossless = _delivered(_run(0.0, rate_bytes_s=None))
    links = _links(monkeypatch)
    lossy = _run(0.5, rate_bytes_s=None, rng=Scripted({1}))
    assert _delivered(lossy) == lossless + retransmission_timeout(100)
    assert links[0].counters()["dtn://a/ retransmissions"] == 1
    assert links[0].counters()["dtn://b/ retransmissions"] == 0


def test_timeouts_back_off_for_a_chunk_lost_again() -> None:
    lossless = _delivered(_run(0.0, rate_bytes_s=None))
    twice = _delivered(_run(0.5, rate_bytes_s=None, rng=Scripted({1, 2})))
    assert twice == lossless + 400 + 800


def _stream(monkeypatch: pytest.MonkeyPatch) -> tuple[list[bytes], list[tuple[int, bytes]]]:
    """Record what the active side writes into its pipe and what reaches the passive side."""
    written: list[bytes] = []
    delivered: list[tuple[int, bytes]] = []
    write, deliver = TcpclLink._write, TcpclLink._deliver

    def spy_write(self: TcpclLink, side: Any, data: bytes) -> None:
        if side.node.node_id == "dtn://a/" and not (self.cut_off or side.dead):
            written.append(bytes(data))
        write(self, side, data)

    def spy_deliver(self: TcpclLink, item: Any) -> None:
        side, data = item
        if side.node.node_id == "dtn://b/":
            delivered.append((self.network.scheduler.now, bytes(data)))
        deliver(self, item)

    monkeypatch.setattr(TcpclLink, "_write", spy_write)
    monkeypatch.setattr(TcpclLink, "_deliver", spy_deliver)
    return written, delivered


@pytest.mark.parametrize("loss", [0.05, 0.2])
def test_loss_delays_the_transfer_but_every_byte_arrives_in_order(
    monkeypatch: pytest.MonkeyPatch, loss: float
) -> None:
    lossless = _delivered(_run(0.0))
    written, delivered = _stream(monkeypatch)
    links = _links(monkeypatch)
    sim = _run(loss)
    assert _delivered(sim) > lossless
    times = [at for at, _ in delivered]
    assert times == sorted(times)  # later bytes never overtake a retransmission
    assert b"".join(data for _, data in delivered) == b"".join(written)
    assert links[0].counters()["dtn://a/ retransmissions"] > 0


def _first_bundle_draw(monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """Which draw decides the fate of the first chunk (500 bytes: 50 ms) of a bundle of
    5,000 bytes, and when the bundle arrives when nothing is lost."""
    counting = Scripted(set())
    first_draw: list[int] = []
    write = TcpclLink._write

    def spy(self: TcpclLink, side: Any, data: bytes) -> None:
        if len(data) > 5_000 and not first_draw:
            first_draw.append(counting.draws + 1)
        write(self, side, data)

    with monkeypatch.context() as patch:
        patch.setattr(TcpclLink, "_write", spy)
        lossless = _delivered(_run(0.5, size=5_000, rng=counting))
    return first_draw[0], lossless


def test_head_of_line_blocking(monkeypatch: pytest.MonkeyPatch) -> None:
    first, lossless = _first_bundle_draw(monkeypatch)
    _, delivered = _stream(monkeypatch)
    lossy = _delivered(_run(0.5, size=5_000, rng=Scripted({first})))
    chunks = [at for at, data in delivered if len(data) == 500]
    assert len(chunks) == 10
    # lost once, sent again 400 ms after it left (taking its 50 ms again): the eight chunks
    # behind it were serialised meanwhile but wait for it and arrive with it
    assert chunks[:9] == [chunks[0]] * 9
    assert chunks[9] == chunks[0] + 50
    # the timeout hides behind the rest of the bundle; its retransmission's 50 ms show
    assert lossy == lossless + 50


def _delivery_times(loss: float, seeds: Iterator[int]) -> list[int]:
    return [_delivered(_run(loss, seed=seed, size=50_000)) for seed in seeds]


def test_goodput_falls_with_loss() -> None:
    none, some, more = (sum(_delivery_times(loss, iter(range(1, 5)))) for loss in (0, 0.02, 0.1))
    assert none < some < more


def test_the_same_seed_gives_the_same_run() -> None:
    one, two = _run(0.1, seed=3), _run(0.1, seed=3)
    assert _delivered(one) == _delivered(two)
    assert one.report() == two.report()
    assert _delivered(_run(0.1, seed=4)) != _delivered(one)


def test_a_pipe_that_loses_everything_never_connects() -> None:
    sim = _run(1.0)
    assert sim.stats.messages["M1"].delivered_at is None
    report = sim.report()
    assert report["started"] == 0 and report["contacts"] == 1
    assert not sim.network.links  # the contact ended; nothing left over


def test_a_chunk_lost_too_often_breaks_the_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    first, lossless = _first_bundle_draw(monkeypatch)
    links = _links(monkeypatch)
    # the first send and 15 retransmissions lost: TCP gives up, nothing more arrives; the
    # sessions time out and the nodes connect again, as dtnd does, and the bundle goes then
    sim = _run(0.5, size=5_000, rng=Scripted(set(range(first, first + 16))))
    counters = links[0].counters()
    assert counters["dtn://a/ retransmissions"] == 15
    assert counters["dtn://b/ segments"] == 0
    assert sim.report()["aborted"] == 1  # the transfer broke off when the sessions ended
    assert len(links) == 2
    assert links[1].counters()["dtn://b/ segments"] >= 1
    assert _delivered(sim) > links[1].opened_at
    # lost five times, it gets through after timeouts of 0.4 + 0.8 + ... + 6.4 s, and five
    # sends of 50 ms, from when it first left (the rest of the bundle took 0.46 s then)
    again = _delivered(_run(0.5, size=5_000, rng=Scripted(set(range(first, first + 5)))))
    assert again == lossless + 12_400 + 5 * 50 - 460
