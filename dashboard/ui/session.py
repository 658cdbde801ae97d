"""What a served page session knows about its viewer: who they are and when they have left.

Identity follows the server's rules (:mod:`dashboard.server.identity`): Panel's own login when
configured, else the display name the visitor picked (the signed ``dashboard_user`` cookie),
else a guest identity that lives as long as the session. :class:`NamePicker` lets a guest pick
a name: the browser posts it to ``/api/identity``, which sets the cookie, and reloads.

When the viewer leaves, :func:`~dashboard.ui.lifecycle.on_session_end` tells within about a
second (not when Bokeh reaps the session, 15-30 s later).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import replace
from html import escape
from typing import Any

import panel as pn
import param

from ..core.user_tokens import (
    IDENTITY_COOKIE,
    IDENTITY_COOKIE_PURPOSE,
    UserIdentity,
    UserTokenError,
    verify_user_token,
)
from .component import Component


def viewer_identity(secret: str) -> UserIdentity | None:
    """The current session's user: Panel's login, else a valid identity cookie, else ``None``.

    Args:
        secret: the app secret the identity cookie is signed with.
    """
    login = pn.state.user
    if login:
        return UserIdentity(str(login))
    cookie = pn.state.cookies.get(IDENTITY_COOKIE)
    if cookie:
        try:
            named = verify_user_token(secret, cookie, purpose=IDENTITY_COOKIE_PURPOSE)
        except UserTokenError:
            return None  # stale or foreign: the visitor picks a name again
        return replace(named, guest=True)  # a name one picked oneself is a guest's
    return None


def viewer_address() -> str | None:
    """The client address of the current session's browser, when served."""
    context = pn.state.curdoc.session_context if pn.state.curdoc else None
    request = getattr(context, "request", None)
    address = getattr(request, "remote_ip", None)
    return address if isinstance(address, str) and address else None


def guest_identity() -> UserIdentity:
    """A fresh identity for an anonymous visitor, valid for one session."""
    suffix = secrets.token_hex(3)
    return UserIdentity(f"guest-{suffix}", f"Guest {suffix}", guest=True)


class NamePicker(Component):
    """Shows who the viewer is (their name, and their user id where it differs: what
    ``dashboard notify --user`` and ``dashboard token`` need) and lets them pick a name.

    The button runs in the browser: it posts the name to ``/api/identity`` (which sets the
    signed identity cookie) and reloads the page, so every part of the page, and every later
    visit, uses the new name. A refused name is shown under the input. With an ``adopt``
    token, the browser also adopts the guest identity the page made for this first visit
    (:meth:`adopt`), so a reload keeps the same id.
    """

    identity = param.ClassSelector(
        class_=UserIdentity, allow_None=True, doc="Who the viewer is now; None when unknown."
    )
    guest = param.Boolean(
        default=True, doc="Whether the identity is a session-only guest (offers a name)."
    )
    editable = param.Boolean(
        default=True,
        doc="Whether the name can be changed here; not when it comes from a login.",
    )
    endpoint = param.String(default="/api/identity", doc="Where the browser posts the name.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        # Set by adopt(); its change runs the browser side, which posts the token.
        self._adoption = pn.widgets.TextInput(visible=False)
        self._adoption.jscallback(
            value=_ADOPT_JS.replace("__ENDPOINT__", json.dumps(self.endpoint))
        )
        self.name_input = pn.widgets.TextInput(
            placeholder="Your name", max_length=128, sizing_mode="stretch_width"
        )
        self.button = pn.widgets.Button(label="Set name", color="primary")
        self.error = pn.pane.HTML("", css_classes=["dashboard-name-error"], margin=(0, 10))
        self.button.js_on_click(
            args={"field": self.name_input, "error": self.error},
            code=_SET_NAME_JS.replace("__ENDPOINT__", json.dumps(self.endpoint)),
        )
        # A long name without spaces wraps rather than run out of the sidebar.
        self.heading = pn.pane.HTML(
            self._heading,
            margin=(0, 10),
            sizing_mode="stretch_width",
            stylesheets=["p { overflow-wrap: anywhere; }"],
        )
        form = pn.Row(
            self.name_input, self.button, sizing_mode="stretch_width", visible=self.editable
        )
        self._layout = pn.Column(self.heading, form, self.error, self._adoption)

    def adopt(self, token: str) -> None:
        """Have the browser keep this session's guest identity (call it once the page has
        loaded): it posts ``{"adopt": token}`` to :attr:`endpoint`, which sets its cookie."""
        self._adoption.value = token

    @param.depends("identity", "guest")
    def _heading(self) -> str:
        if self.identity is None:
            return "<p>Pick a name to chat.</p>"
        name = escape(self.identity.display_name)
        user_id = self.identity.user_id
        # The id is what `dashboard notify --user` and `dashboard token` take.
        shown_id = (
            f' <small class="dashboard-my-id">(id <code>{escape(user_id)}</code>)</small>'
            if user_id != self.identity.display_name
            else ""
        )
        hint = " Pick a name so others know you." if self.guest else ""
        return f'<p>You are <b class="dashboard-me">{name}</b>{shown_id}.{hint}</p>'

    def __panel__(self) -> pn.Column:
        return self._layout


# Runs in the browser when adopt() sets the hidden input: the cookie keeps the guest's id.
_ADOPT_JS = """
if (!cb_obj.value) { return; }
fetch(__ENDPOINT__, {
  method: "POST",
  credentials: "same-origin",
  headers: {"Content-Type": "application/json"},
  body: JSON.stringify({adopt: cb_obj.value}),
}).catch(() => {});  // without the cookie, the next visit is a new guest: no harm
"""

# Runs in the browser. ``field`` is the TextInput's Bokeh model, ``error`` the HTML pane's.
_SET_NAME_JS = """
const name = (field.value_input || field.value || "").trim();
if (!name) { error.text = "<small>Type a name first.</small>"; return; }
fetch(__ENDPOINT__, {
  method: "POST",
  credentials: "same-origin",
  headers: {"Content-Type": "application/json"},
  body: JSON.stringify({name: name}),
}).then(async (response) => {
  if (response.ok) { window.location.reload(); return; }
  let message = "HTTP " + response.status;
  try { message = (await response.json()).message || message; } catch (e) {}
  const safe = document.createElement("small");
  safe.textContent = message;
  error.text = safe.outerHTML;
}).catch((e) => {
  const safe = document.createElement("small");
  safe.textContent = "Could not reach the server: " + e;
  error.text = safe.outerHTML;
});
"""
