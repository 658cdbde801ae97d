"""Panel components that show a live event stream.

Every component takes a :class:`StreamSource` (one subscription, shared per page), never a URL:
the same components run against an in-kernel hub and a remote server alike.
"""

from .chart import LiveChart
from .live_feed import LiveFeed, format_event
from .source import StreamSource
from .status import ConnectionBadge

__all__ = ["ConnectionBadge", "LiveChart", "LiveFeed", "StreamSource", "format_event"]
