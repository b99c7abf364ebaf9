"""Configuration of a TCPCL session: what we offer in the contact header and SESS_INIT."""

from __future__ import annotations

from dataclasses import dataclass

from dtncloud.errors import ConfigError

_U16_MAX = 0xFFFF
_U64_MAX = 0xFFFF_FFFF_FFFF_FFFF

#: Default largest segment we accept. Whole segments are buffered, so this bounds the
#: receive buffer; 1 MiB keeps per-segment overhead small on fast links.
DEFAULT_SEGMENT_MRU = 1 << 20
#: Default largest transfer (bundle) we accept. Deliberately modest: some peers (HDTN) size
#: buffers from the number a peer announces and fail on huge values.
DEFAULT_TRANSFER_MRU = 100_000_000


@dataclass(frozen=True)
class SessionConfig:
    """What one side of a TCPCL session offers and insists on.

    ``node_id`` is our node ID as a URI (empty: not disclosed). ``keepalive_s`` is the
    keepalive interval we offer in seconds (0 disables keepalives); the session uses the
    smaller of both offers. ``segment_mru`` / ``transfer_mru`` are the largest segment and
    the largest transfer we accept. ``max_segment_size`` caps the segments we send (the peer's
    segment MRU caps them too). ``can_tls`` sets CAN_TLS in our contact header;
    ``require_tls`` ends the session (SESS_TERM contact failure) if TLS is not negotiated.
    ``contact_timeout_ms`` bounds the wait for the peer's contact header and SESS_INIT.
    ``idle_timeout_factor`` times the keepalive interval without any received message ends
    the session with SESS_TERM idle timeout. ``ending_timeout_ms`` bounds how long the ending
    state waits for the peer's reply and for open transfers before closing anyway.
    ``ack_segments`` makes the receiver acknowledge every segment (RFC 9174 requires it;
    TCPCLv3 negotiates it).
    """

    node_id: str = ""
    keepalive_s: int = 60
    segment_mru: int = DEFAULT_SEGMENT_MRU
    transfer_mru: int = DEFAULT_TRANSFER_MRU
    max_segment_size: int = DEFAULT_SEGMENT_MRU
    can_tls: bool = False
    require_tls: bool = False
    contact_timeout_ms: int = 60_000
    idle_timeout_factor: int = 2
    ending_timeout_ms: int = 30_000

    def __post_init__(self) -> None:
        if not 0 <= self.keepalive_s <= _U16_MAX:
            raise ConfigError(f"keepalive must be 0..{_U16_MAX} seconds, not {self.keepalive_s}")
        for name in ("segment_mru", "transfer_mru", "max_segment_size"):
            value = getattr(self, name)
            if not 1 <= value <= _U64_MAX:
                raise ConfigError(f"{name.replace('_', ' ')} must be 1..2^64-1, not {value}")
        if self.require_tls and not self.can_tls:
            raise ConfigError("require_tls needs can_tls")
        if len(self.node_id.encode("utf-8")) > _U16_MAX:
            raise ConfigError("node ID longer than 65535 bytes")
        for name in ("contact_timeout_ms", "ending_timeout_ms", "idle_timeout_factor"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name.replace('_', ' ')} must be positive")
