"""Local delivery bookkeeping (RFC 9171 section 5.7): registrations, and the bundles
waiting for each endpoint's application.

An endpoint is *registered* once an application has attached to it; it is *active* while
that application takes deliveries. Bundles for an endpoint wait here while it is inactive
or unknown, until the application comes (back) or their lifetime ends.
"""

from __future__ import annotations

__all__ = ["DeliveryBook"]


class DeliveryBook:
    def __init__(self) -> None:
        self._active: dict[str, bool] = {}
        self._waiting: dict[str, dict[str, None]] = {}
        self._delivering: set[str] = set()

    def is_registered(self, endpoint: str) -> bool:
        return endpoint in self._active

    def is_active(self, endpoint: str) -> bool:
        return self._active.get(endpoint, False)

    def wait(self, bundle_id: str, endpoint: str) -> None:
        """``bundle_id`` is for ``endpoint`` and not delivered yet."""
        self._waiting.setdefault(endpoint, {})[bundle_id] = None

    def register(self, endpoint: str) -> list[str]:
        """The application of ``endpoint`` is here; returns the bundles to deliver to it."""
        self._active[endpoint] = True
        return list(self._waiting.get(endpoint, ()))

    def deregister(self, endpoint: str, *, forget: bool = False) -> None:
        if forget:
            self._active.pop(endpoint, None)
        elif endpoint in self._active:
            self._active[endpoint] = False

    def start(self, bundle_id: str) -> bool:
        """Whether a delivery of ``bundle_id`` may start (none is under way)."""
        if bundle_id in self._delivering:
            return False
        self._delivering.add(bundle_id)
        return True

    def failed(self, bundle_id: str, endpoint: str) -> None:
        """The application did not take it: it is taken to be away until it registers."""
        self._delivering.discard(bundle_id)
        if endpoint in self._active:
            self._active[endpoint] = False

    def done(self, bundle_id: str, endpoint: str) -> None:
        """``bundle_id`` no longer waits for ``endpoint`` (delivered or deleted)."""
        self._delivering.discard(bundle_id)
        waiting = self._waiting.get(endpoint)
        if waiting is not None:
            waiting.pop(bundle_id, None)
            if not waiting:
                del self._waiting[endpoint]
