"""Helpers for the TCPCLv4 session tests: sessions wired by SessionPair or fed hand-made bytes."""

from __future__ import annotations

from typing import Any

from dtncloud.tcpcl.codes import MsgRejectReason, Role
from dtncloud.tcpcl.config import SessionConfig
from dtncloud.tcpcl.events import Event, ExtensionItem
from dtncloud.tcpcl.messages import ContactHeader, Item, MessageReader, SessInit, XferRefuse
from dtncloud.tcpcl.pair import SessionPair
from dtncloud.tcpcl.session import Session

ACTIVE, PASSIVE = Role.ACTIVE, Role.PASSIVE
START, END = 2, 1
UNEXPECTED = MsgRejectReason.UNEXPECTED


def make(role: Role, now: int = 0, **config: Any) -> Session:
    return Session(role, SessionConfig(**config), now)


def connect(
    active: dict[str, Any] | None = None, passive: dict[str, Any] | None = None, **kw: Any
) -> SessionPair:
    """Two sessions (node IDs dtn://a/ and dtn://p/), pumped until quiet."""
    pair = SessionPair(
        make(ACTIVE, node_id="dtn://a/", **(active or {})),
        make(PASSIVE, node_id="dtn://p/", **(passive or {})),
        **kw,
    )
    pair.pump()
    return pair


def established(**kw: Any) -> SessionPair:
    pair = connect(**kw)
    assert pair.active.established and pair.passive.established
    pair.take("active")
    pair.take("passive")
    return pair


def events(session: Session) -> list[Event]:
    return list(iter(session.next_event, None))


def sent(session: Session, *, contact: bool = False) -> list[Item]:
    """The messages ``session`` queued, parsed back."""
    reader = MessageReader(max_segment=1 << 30, expect_contact=contact)
    reader.feed(session.data_to_send())
    items = list(iter(reader.next, None))
    assert reader.buffered == 0
    return items


def of(kind: type, items: list[Any]) -> list[Any]:
    return [item for item in items if isinstance(item, kind)]


CONTACT = ContactHeader(4, 0).encode()
CONTACT_TLS = ContactHeader(4, 1).encode()


def sess_init(keepalive: int = 60, seg: int = 1 << 20, xfer: int = 10**8, **kw: Any) -> bytes:
    return SessInit(keepalive, seg, xfer, kw.pop("node", "dtn://peer/"), **kw).encode()


def length_ext(total: int, critical: bool = False) -> ExtensionItem:
    return ExtensionItem(1, total.to_bytes(8, "big"), critical)


def raw(role: Role = PASSIVE, **config: Any) -> Session:
    """A session established with a hand-driven peer; its output and events are drained."""
    session = make(role, **config)
    session.receive_data(CONTACT + sess_init(), 0)
    assert session.established
    session.data_to_send()
    events(session)
    return session


def refusals(session: Session) -> list[XferRefuse]:
    """The XFER_REFUSE messages ``session`` queued."""
    return of(XferRefuse, sent(session))
