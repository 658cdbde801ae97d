"""The presence side of a Pusher connection: joining a roster, and being told its changes.

A :class:`~dashboard.hub.presence.Presence` (this process', or a cluster's in Redis) decides
who is a member and reports every change, once, to every process
(:meth:`~.base.ServerContext.roster_changed`). A connection must pass on each change exactly
once and only if its client's roster lacks it: the roster comes with
``pusher_internal:subscription_succeeded``, and changes race it. So a joining connection listens
*before* it asks to join, holds what arrives meanwhile, and once the join answers with the
roster and its sequence number, passes on only the held and later changes with a higher one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..core.errors import BackendUnavailable
from ..core.presence import PresenceChannelFull, PresenceError
from ..core.pusher_frames import (
    member_added,
    member_removed,
    subscription_error,
    subscription_succeeded,
)
from ..hub.presence import RosterChange
from .base import log

if TYPE_CHECKING:
    from ..hub import Subscription
    from .base import ServerContext


class PresenceMember:
    """Mixin of :class:`~.pusher_ws.PusherSocketHandler` for its presence channels."""

    if TYPE_CHECKING:
        ctx: ServerContext
        socket_id: str
        channels: set[str]
        subscription: Subscription | None
        _closed: bool

        def _send(self, message: str | bytes) -> None: ...

    def init_presence(self) -> None:
        # Per presence channel: the roster sequence number the client is up to, or the
        # changes held while its join is on its way.
        self._roster_seq: dict[str, int] = {}
        self._roster_held: dict[str, list[RosterChange]] = {}

    async def _join(self, channel: str, user_id: str, user_info: Any) -> None:
        """Join the presence roster; roster changes that race the join are held until it
        answers, then those it does not already reflect are passed on (see RosterChange)."""
        presence = self.ctx.presence
        self._listen_roster(channel)
        try:
            joined = await presence.join(channel, self.socket_id, user_id, user_info)
        except Exception as exc:  # refused, or a presence store that cannot be reached
            self._unlisten_roster(channel)
            if channel not in self.channels and self.subscription is not None:
                self.ctx.hub.remove_channel(self.subscription, channel)
            if isinstance(exc, PresenceError):
                full = isinstance(exc, PresenceChannelFull)
                error_type = "LimitReached" if full else "Error"
                self._send(subscription_error(channel, 403, str(exc), error_type))
                return
            if isinstance(exc, BackendUnavailable):
                log.warning("presence join failed on %s: %s", channel, exc)
            else:
                log.exception("presence join failed on %s", channel)
            self._send(subscription_error(channel, 503, "presence unavailable", "ServerError"))
            return
        if self._closed:  # the socket closed while joining: its cleanup missed this join
            presence.leave(channel, self.socket_id)
            self._unlisten_roster(channel)
            return
        self.channels.add(channel)
        self.ctx.pusher_channels.setdefault(channel, set()).add(self)
        self._send(subscription_succeeded(channel, joined.snapshot()))
        held = self._roster_held.pop(channel, [])
        self._roster_seq[channel] = joined.seq
        for change in held:
            self.roster_changed(change)

    def _listen_roster(self, channel: str) -> None:
        self.ctx.presence_listeners.setdefault(channel, set()).add(self)
        if channel not in self._roster_seq:
            self._roster_held.setdefault(channel, [])

    def _unlisten_roster(self, channel: str) -> None:
        self._roster_held.pop(channel, None)
        self._roster_seq.pop(channel, None)
        listeners = self.ctx.presence_listeners.get(channel)
        if listeners is not None:
            listeners.discard(self)
            if not listeners:
                del self.ctx.presence_listeners[channel]

    def roster_changed(self, change: RosterChange) -> None:
        """Tell the client a member joined or left, once, and only what its roster lacks."""
        if change.socket_id == self.socket_id:
            return  # the joining socket was told by its subscription_succeeded
        held = self._roster_held.get(change.channel)
        if held is not None:
            held.append(change)
            return
        seen = self._roster_seq.get(change.channel)
        if seen is None or change.seq <= seen:
            return  # already in the roster it was sent
        self._roster_seq[change.channel] = change.seq
        if change.added:
            self._send(member_added(change.channel, change.user_id, change.user_info))
        else:
            self._send(member_removed(change.channel, change.user_id))

    def leave_rosters(self) -> None:
        """Stop listening to every roster and leave every presence channel (socket closed)."""
        for channel in {*self._roster_seq, *self._roster_held}:
            self._unlisten_roster(channel)
        self.ctx.presence.leave_all(self.socket_id)
