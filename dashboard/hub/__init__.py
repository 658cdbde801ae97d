"""Asyncio fan-out with history and exact resume, over a pluggable backend."""

from .backends import Backend, MemoryBackend
from .hub import Hub, HubStats
from .stream import HubStream
from ..core.cursor import Reset
from .subscription import Subscription

__all__ = ["Backend", "Hub", "HubStats", "HubStream", "MemoryBackend", "Reset", "Subscription"]
