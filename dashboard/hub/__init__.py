"""Asyncio fan-out with history and exact resume, over a pluggable backend."""

from ..core.cursor import Reset
from .backends import Backend, MemoryBackend
from .hub import Hub, HubStats
from .stream import HubStream
from .subscription import Subscription

__all__ = ["Backend", "Hub", "HubStats", "HubStream", "MemoryBackend", "Reset", "Subscription"]
