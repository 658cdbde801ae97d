"""Who is on a presence channel: a count and one avatar row per member."""

from __future__ import annotations

import hashlib
import html
import unicodedata
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import panel as pn
import param

from .component import Component

if TYPE_CHECKING:
    from ..client.pusher_channels import PresenceChannel

#: Avatar backgrounds, all dark enough for white initials.
AVATAR_COLORS = (
    "#2563eb",
    "#7c3aed",
    "#db2777",
    "#dc2626",
    "#ea580c",
    "#ca8a04",
    "#16a34a",
    "#0d9488",
    "#0891b2",
    "#475569",
)

#: Rows rendered at most; the rest are summed up as "and N more". Pusher caps presence
#: channels at 100 members, but ``members`` may be set from anywhere.
MAX_ROWS = 100
#: Display names longer than this are cut (with "…").
MAX_NAME_LENGTH = 64

_CSS = """
.dashboard-presence { font-size: 13px; }
.dashboard-presence-count { font-weight: 600; margin: 0 0 6px 0; }
.dashboard-presence-title { color: #64748b; font-weight: 400; }
.dashboard-presence-list { list-style: none; margin: 0; padding: 0; }
.dashboard-presence-member { display: flex; align-items: center; gap: 8px; padding: 2px 0; }
.dashboard-presence-avatar { display: inline-flex; align-items: center; justify-content: center;
  width: 26px; height: 26px; border-radius: 50%; color: #fff; font-size: 11px; font-weight: 600;
  flex: none; }
.dashboard-presence-name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.dashboard-presence-you { color: #64748b; }
.dashboard-presence-more { color: #64748b; font-style: italic; padding: 2px 0; }
"""

_ZWJ = "\u200d"


def _joins_previous(char: str) -> bool:
    """Whether ``char`` belongs to the character before it on screen."""
    code = ord(char)
    return (
        unicodedata.combining(char) != 0
        or unicodedata.category(char) in ("Mn", "Me")
        or 0xFE00 <= code <= 0xFE0F  # variation selectors (emoji vs text style)
        or 0x1F3FB <= code <= 0x1F3FF  # skin tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters (subdivision flags)
    )


def _first_grapheme(word: str) -> str:
    """The first user-perceived character of ``word``, approximately (UAX #29 light).

    Keeps combining marks, variation selectors, skin tones, ZWJ sequences and flag pairs
    together, so an initial is never half an emoji.
    """
    end = 1
    if 0x1F1E6 <= ord(word[0]) <= 0x1F1FF and len(word) > 1 and 0x1F1E6 <= ord(word[1]) <= 0x1F1FF:
        end = 2  # a flag is a pair of regional indicators
    while end < len(word):
        if _joins_previous(word[end]):
            end += 1
        elif word[end] == _ZWJ and end + 1 < len(word):
            end += 2
        else:
            break
    return word[:end]


def initials(name: str) -> str:
    """Up to two initials: the first character of the first and the last word, uppercased.

    ``"Ada Lovelace"`` -> ``"AL"``, ``"ada"`` -> ``"A"``, ``"李 小龙"`` -> ``"李小"``, an emoji
    stays whole; ``"?"`` for a blank name.
    """
    words = name.split()
    if not words:
        return "?"
    first = _first_grapheme(words[0])
    if len(words) == 1:
        return first.upper()
    return (first + _first_grapheme(words[-1])).upper()


def avatar_color(user_id: str) -> str:
    """A colour from :data:`AVATAR_COLORS`, the same for ``user_id`` in every process.

    Uses SHA-256 rather than ``hash()``, which is salted per process.
    """
    digest = hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).digest()
    return AVATAR_COLORS[int.from_bytes(digest[:4], "big") % len(AVATAR_COLORS)]


def display_name(user_id: str, user_info: Any) -> str:
    """``user_info["name"]`` when it is a non-blank string, else the user id; cut when long."""
    name = user_info.get("name") if isinstance(user_info, Mapping) else None
    text = " ".join(name.split()) if isinstance(name, str) else ""
    text = text or str(user_id)
    return text if len(text) <= MAX_NAME_LENGTH else text[: MAX_NAME_LENGTH - 1] + "…"


def count_text(count: int) -> str:
    """``"1 person here"``, ``"3 people here"``."""
    return "1 person here" if count == 1 else f"{count} people here"


def ordered_members(members: Mapping[str, Any], me: str | None = None) -> list[tuple[str, str]]:
    """``(user_id, display name)`` pairs: ``me`` first, then by name, case-insensitively."""
    rows = [(str(user_id), display_name(str(user_id), info)) for user_id, info in members.items()]
    rows.sort(key=lambda row: (row[0] != me, row[1].casefold(), row[1], row[0]))
    return rows


def render_presence(members: Mapping[str, Any], me: str | None = None, title: str = "") -> str:
    """HTML for the list. Names, ids and the title (all user input) are escaped.

    The root is ``div.dashboard-presence``; each member is an ``li.dashboard-presence-member``
    with a ``data-user-id`` attribute.
    """
    rows = []
    ordered = ordered_members(members, me)
    for user_id, name in ordered[:MAX_ROWS]:
        you = ' <span class="dashboard-presence-you">(you)</span>' if user_id == me else ""
        rows.append(
            f'<li class="dashboard-presence-member" data-user-id="{html.escape(user_id)}">'
            f'<span class="dashboard-presence-avatar" aria-hidden="true" '
            f'style="background:{avatar_color(user_id)}">{html.escape(initials(name))}</span>'
            f'<span class="dashboard-presence-name">{html.escape(name)}{you}</span></li>'
        )
    more = ""
    if len(ordered) > MAX_ROWS:
        more = f'<div class="dashboard-presence-more">and {len(ordered) - MAX_ROWS} more</div>'
    heading = (
        f'<span class="dashboard-presence-title">{html.escape(title)} · </span>' if title else ""
    )
    return (
        f'<div class="dashboard-presence" data-count="{len(ordered)}">'
        f'<div class="dashboard-presence-count">{heading}{count_text(len(ordered))}</div>'
        f'<ul class="dashboard-presence-list">{"".join(rows)}</ul>{more}</div>'
    )


class PresenceList(Component):
    """Who is here: ``"3 people here"``, then a row per member with a coloured avatar.

    Set :attr:`members` yourself or let :meth:`follow` keep it in sync with a presence
    channel of a :class:`~dashboard.client.PusherClient`. This viewer comes first, marked
    "(you)"; the others follow by name.

    Usage::

        people = PresenceList()
        channel = await client.subscribe("presence-dashboard")
        unfollow = people.follow(channel)
    """

    members = param.Dict(
        default={}, doc="user_id -> user_info of everyone present; a 'name' in user_info is shown."
    )
    me = param.String(
        default=None, allow_None=True, doc="User id of whoever looks at this list, or None."
    )
    title = param.String(default="Who's here", doc="Heading shown before the count.")
    count = param.Integer(
        default=0,
        bounds=(0, None),
        doc="How many members there are (output: follows members, do not set it).",
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._unfollow: Callable[[], None] | None = None
        self._pane = pn.pane.HTML(
            render_presence(self.members, self.me, self.title),
            css_classes=["dashboard-presence-pane"],
            stylesheets=[_CSS],
        )
        self.count = len(self.members)

    def __panel__(self) -> pn.viewable.Viewable:
        return self._pane

    @property
    def html(self) -> str:
        """The HTML currently rendered."""
        return str(self._pane.object)

    @property
    def names(self) -> list[str]:
        """The members' display names, in the order shown."""
        return [name for _user_id, name in ordered_members(self.members, self.me)]

    def follow(self, channel: PresenceChannel) -> Callable[[], None]:
        """Show ``channel``'s members, now and after every change, until unfollowed.

        The channel may be subscribed already or not yet; :attr:`me` follows the channel's own
        user id. Following a channel stops following the previous one.

        Args:
            channel: a :class:`~dashboard.client.PresenceChannel`.

        Returns:
            A function that stops following (the list keeps what it shows).
        """
        if self._unfollow is not None:
            self._unfollow()

        def update(members: dict[str, Any]) -> None:
            # Called from the client's task; Panel forwards pane changes to the document.
            self.param.update(members=dict(members), me=channel.me)

        update(channel.members)
        unwatch = channel.on_members_change(update)

        def unfollow() -> None:
            unwatch()
            if self._unfollow is unfollow:
                self._unfollow = None

        self._unfollow = unfollow
        return unfollow

    @param.depends("members", "me", "title", watch=True)
    def _render(self) -> None:
        self.count = len(self.members)
        self._pane.object = render_presence(self.members, self.me, self.title)
