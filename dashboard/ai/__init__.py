"""LLM providers behind one small seam (:class:`Provider`): the ``openai`` SDK, and an offline
demo that needs no key.

:func:`provider_from_env` picks one the way ``dashboard serve`` does: OpenAI (or any
OpenAI-compatible server) when ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` is set, else the demo.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .base import (
    ERROR_KINDS,
    ChatMessage,
    ChatTooLarge,
    InvalidChatMessages,
    Provider,
    ProviderError,
    parse_messages,
)
from .demo import DemoProvider

if TYPE_CHECKING:
    from .openai_provider import OpenAIProvider

__all__ = [
    "ERROR_KINDS",
    "ChatMessage",
    "ChatTooLarge",
    "DemoProvider",
    "InvalidChatMessages",
    "OpenAIProvider",
    "Provider",
    "ProviderError",
    "parse_messages",
    "provider_from_env",
]


def provider_from_env(model: str | None = None) -> Provider:
    """The provider the environment asks for.

    ``OPENAI_API_KEY`` or ``OPENAI_BASE_URL`` set: an :class:`OpenAIProvider` for ``model``
    (else ``$OPENAI_MODEL``, else ``gpt-4o-mini``) with ``$OPENAI_TIMEOUT`` seconds (default
    60). Neither set: the :class:`DemoProvider`, labelled as a demo.

    Raises:
        ValueError: ``OPENAI_TIMEOUT`` is not a positive number.
    """
    if not (os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL")):
        return DemoProvider()
    from .openai_provider import DEFAULT_MODEL, DEFAULT_TIMEOUT, OpenAIProvider

    raw_timeout = os.environ.get("OPENAI_TIMEOUT") or str(DEFAULT_TIMEOUT)
    try:
        timeout = float(raw_timeout)
    except ValueError:
        timeout = -1.0
    if not timeout > 0:
        raise ValueError(
            f"OPENAI_TIMEOUT must be a positive number of seconds, not {raw_timeout!r}"
        )
    return OpenAIProvider(model or os.environ.get("OPENAI_MODEL") or DEFAULT_MODEL, timeout=timeout)


def __getattr__(name: str) -> object:
    # The SDK is imported on first use: the demo and the server do not need it loaded.
    if name == "OpenAIProvider":
        from .openai_provider import OpenAIProvider

        return OpenAIProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
