"""The one error type handlers raise: an HTTP status with a JSON body that says what to fix."""

from __future__ import annotations

import tornado.web

#: The ``WWW-Authenticate`` header of a 401 that wants a bearer token.
BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="dashboard"'}


class ApiError(tornado.web.HTTPError):
    """An HTTP error with a JSON body ``{"error": code, "message": message}``.

    ``message`` is written for the client, whatever the status (a 503 says what is
    unavailable); ``headers`` (``Retry-After``, ``WWW-Authenticate`` ...) go with the answer.
    They must travel on the error: Tornado clears headers set before an error is sent.
    """

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status, reason=None)
        self.code = code
        self.message = message
        self.headers = headers or {}
