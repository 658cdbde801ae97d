"""How the served page fits phones and small windows as well as a desktop.

Panel's :class:`~panel.template.BootstrapTemplate` lays the page out for a desktop: a fixed
sidebar beside the main area, and no ``<meta name="viewport">``, so a phone lays it out 980 px
wide and scales it down. :func:`fit_small_screens` gives a template the viewport and page CSS
that turns the sidebar into a drawer over the page below Bootstrap's ``md`` breakpoint. The
template renders no scripts of its own, so the script that starts the drawer closed there
(``assets/narrow-sidebar.js``) is one :class:`~dashboard.server.DashboardServer` loads on its
pages. :func:`side_by_side` puts panels next to each other while each keeps
:data:`PANEL_MIN_WIDTH`, one under the other when the window is narrower.
"""

from __future__ import annotations

from typing import Any

import panel as pn
from panel.template.base import BasicTemplate

#: Lay the page out at the device's width, not a desktop's (mobile browsers assume 980 px).
VIEWPORT = "width=device-width, initial-scale=1"
#: Panels side by side narrower than this wrap onto their own line (pixels).
PANEL_MIN_WIDTH = 360

#: Document CSS (the template's own elements; components style their shadow roots themselves).
#: 767.98 px is Bootstrap's ``md`` breakpoint, the one narrow-sidebar.js tests too.
PAGE_CSS = """
@media (max-width: 767.98px) {
  /* The sidebar is a drawer over the page instead of a column that squeezes it. */
  #content { position: relative; flex-wrap: nowrap; }
  #sidebar {
    --sidebar-width: min(300px, 85vw);
    position: absolute; top: 0; bottom: 0; left: 0; z-index: 1030;
    background-color: var(--bs-body-bg); box-shadow: 4px 0 16px rgba(15, 23, 42, 0.25);
  }
  #main { padding: 8px; }
  /* One header line: the title gives way (with an ellipsis) to the bell and the spinner. */
  #header { flex-wrap: nowrap; }
  #header .title { font-size: 1em; padding-left: 0.25em; min-width: 0; overflow: hidden;
    text-overflow: ellipsis; }
  #header-items { margin-left: 4px; flex-grow: 0; }
}
"""


def fit_small_screens(template: BasicTemplate) -> None:
    """Give ``template`` the viewport and the page CSS (see the module)."""
    template.meta_viewport = VIEWPORT
    template.config.raw_css = [*template.config.raw_css, PAGE_CSS]


def side_by_side(*panels: Any, min_width: int = PANEL_MIN_WIDTH) -> pn.FlexBox:
    """``panels`` in one row, sharing its width, each at least ``min_width`` pixels wide; on a
    narrower screen they wrap, one under the other, each as wide as the screen."""
    items = [
        pn.Column(panel, sizing_mode="stretch_width", styles={"flex": f"1 1 {min_width}px"})
        for panel in panels
    ]
    return pn.FlexBox(*items, flex_wrap="wrap", sizing_mode="stretch_width")
