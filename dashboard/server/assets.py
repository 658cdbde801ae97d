"""``GET /api/assets/{file}``: the few static files the pages load, answered like the API.

Tornado's :class:`~tornado.web.StaticFileHandler` with what every other route has: the
``Host`` check (a page behind DNS rebinding gets nothing), and errors as JSON
``{"error", "message"}`` instead of Tornado's HTML page; a path no file can have (a NUL, say,
which made ``os.path`` raise and the handler answer 500) is a plain 404.
"""

from __future__ import annotations

from typing import Any

import tornado.web

from .base import ServerContext, check_host, write_json_error
from .errors import ApiError


def _no_such_asset() -> ApiError:
    return ApiError(404, "not_found", "no such asset")


class AssetHandler(tornado.web.StaticFileHandler):
    """Static files from ``path``, for a server whose context is ``ctx``."""

    def initialize(self, path: str, ctx: ServerContext) -> None:  # type: ignore[override]
        super().initialize(path)
        self.ctx = ctx

    def prepare(self) -> None:
        check_host(self, self.ctx)

    @classmethod
    def get_absolute_path(cls, root: str, path: str) -> str:
        if "\x00" in path:
            raise _no_such_asset()
        try:
            return super().get_absolute_path(root, path)
        except tornado.web.HTTPError:  # a path that leads out of the folder
            raise _no_such_asset() from None

    def validate_absolute_path(self, root: str, absolute_path: str) -> str | None:
        # Tornado says 403 for a path outside the folder or a folder: to a caller, all of
        # these are one answer, which tells nothing of the folder's layout.
        try:
            return super().validate_absolute_path(root, absolute_path)
        except tornado.web.HTTPError as exc:
            if exc.status_code in (403, 404):
                raise _no_such_asset() from None
            raise

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        write_json_error(self, status_code, **kwargs)
