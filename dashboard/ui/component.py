"""The base of the package's Panel components: full Panel citizens.

Every component is a :class:`panel.custom.PyComponent`: built with ``__panel__`` like a
``Viewer``, it also takes the layout parameters every Panel object takes (``sizing_mode``,
``width``, ``height``, ``margin``, ``min_width``, ``visible``, ``css_classes`` ...) and hands
them to what it renders, so ``LiveChart(source=..., sizing_mode="stretch_width")`` or
``ChatRoom(connection=..., height=400)`` behave as in any Panel layout. The components stretch to
the available width unless told otherwise. What they render sets no layout parameters of its
own: PyComponent lets a rendered object's own settings win over the component's.
"""

from __future__ import annotations

import panel as pn
import param
from bokeh.core.enums import SizingMode


class Component(pn.custom.PyComponent):
    """A Panel component of this package (see the module doc)."""

    sizing_mode: param.Selector = param.Selector(
        default="stretch_width",
        objects=list(SizingMode),
        allow_None=True,
        doc="How the component sizes itself (Panel's sizing modes); stretches by default.",
    )
