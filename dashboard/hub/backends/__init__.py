"""Hub backends behind one interface: memory (the default) and Redis (:mod:`.redis`, imported
on demand so that the ``redis`` package stays optional)."""

from .base import Backend, Deliver, Lost
from .memory import MemoryBackend

__all__ = ["Backend", "Deliver", "Lost", "MemoryBackend"]
