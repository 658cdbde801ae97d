"""Callback lists for the clients' "tell me when ..." methods."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

log = logging.getLogger("dashboard.client")

F = TypeVar("F", bound=Callable[..., None])


class Listeners(Generic[F]):
    """Callbacks called in the order they were added; one that raises is logged and skipped,
    so it can neither stop the others nor the connection that calls them."""

    def __init__(self) -> None:
        self._listeners: list[F] = []

    def add(self, listener: F) -> Callable[[], None]:
        """Add ``listener``; returns a function that removes it again."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def emit(self, *args: Any) -> None:
        for listener in list(self._listeners):
            try:
                listener(*args)
            except Exception:
                log.exception("listener %r failed", listener)
