"""Hub backends behind one interface: memory now, networked ones later."""

from .base import Backend, Deliver
from .memory import MemoryBackend

__all__ = ["Backend", "Deliver", "MemoryBackend"]
