"""The provider seam: chat messages in, an async iterator of text chunks out.

Everything here is plain Python (no SDK, no I/O), so the server, the client and the UI share
one message type and one validation, and a provider is anything with this small shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ..core.errors import DashboardError, ValidationError

#: Roles a message may have, as in the OpenAI chat API.
ROLES = ("system", "user", "assistant")
#: Most messages in one request (history included).
MAX_MESSAGES = 64
#: Longest single message, in characters.
MAX_CONTENT_CHARS = 8_000
#: Longest conversation, in characters; the request body limit (64 KB) also applies.
MAX_TOTAL_CHARS = 32_000

#: What went wrong, as :attr:`ProviderError.kind`.
ERROR_KINDS = ("auth", "rate_limit", "upstream", "timeout")

#: The message shown for each kind unless a provider has a more specific safe one.
DEFAULT_ERROR_MESSAGES = {
    "auth": "The model server refused the API key (check OPENAI_API_KEY).",
    "rate_limit": "The model server is rate limiting requests; wait a moment and retry.",
    "upstream": "The model server failed to answer; retry in a moment.",
    "timeout": "The model server did not answer in time; retry in a moment.",
}


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One turn of a conversation.

    Attributes:
        role: ``system``, ``user`` or ``assistant``.
        content: the text.
    """

    role: str
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


class InvalidChatMessages(ValidationError):
    """A ``messages`` list that breaks the rules of :func:`parse_messages`."""

    code = "invalid_messages"


class ChatTooLarge(InvalidChatMessages):
    """A message or conversation over the size limits (HTTP 413)."""

    code = "chat_too_large"


class ProviderError(DashboardError):
    """The model could not answer; :attr:`message` is safe to show anyone.

    Providers raise this and nothing else from :meth:`Provider.stream`, and never put a key,
    a URL with credentials or a traceback in the message.

    Args:
        kind: one of :data:`ERROR_KINDS`.
        message: the user-facing text; the kind's default when ``None``.

    Attributes:
        kind: ``auth``, ``rate_limit``, ``upstream`` or ``timeout``.
        message: the user-facing text.
    """

    def __init__(self, kind: str, message: str | None = None) -> None:
        if kind not in ERROR_KINDS:
            raise ValueError(f"unknown error kind {kind!r}")
        self.kind = kind
        self.message = message or DEFAULT_ERROR_MESSAGES[kind]
        super().__init__(self.message)


@runtime_checkable
class Provider(Protocol):
    """Something that streams a chat answer.

    Attributes:
        name: the implementation, e.g. ``"openai"`` or ``"demo"``.
        model: the model asked, e.g. ``"gpt-4o-mini"``.
        label: one line for the UI that says what answers (and whether it is a demo).
    """

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def label(self) -> str: ...

    def stream(self, messages: Sequence[ChatMessage]) -> AsyncIterator[str]:
        """Stream the assistant's answer to ``messages`` as text chunks.

        The iterator is an async generator: ``aclose()`` (or cancelling the task iterating
        it) aborts the upstream request at once.

        Raises:
            ProviderError: the model could not answer (before or during the stream).
        """
        ...


def parse_messages(raw: Any) -> tuple[ChatMessage, ...]:
    """Validate a JSON ``messages`` list as sent to ``POST /api/chat``.

    Each item is ``{"role": "system"|"user"|"assistant", "content": str}``; there are 1 to
    :data:`MAX_MESSAGES` of them, the last one is the user's, and the sizes stay under
    :data:`MAX_CONTENT_CHARS` each and :data:`MAX_TOTAL_CHARS` in all.

    Returns:
        The messages, in order.

    Raises:
        InvalidChatMessages: a rule is broken (the message says which item and how).
        ChatTooLarge: a size limit is exceeded.
    """
    if not isinstance(raw, list) or not raw:
        raise InvalidChatMessages('"messages" must be a non-empty list')
    if len(raw) > MAX_MESSAGES:
        raise ChatTooLarge(f"at most {MAX_MESSAGES} messages per request, not {len(raw)}")
    messages = []
    total = 0
    for index, item in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(item, dict):
            raise InvalidChatMessages(f'{where} must be an object {{"role", "content"}}')
        unknown = set(item) - {"role", "content"}
        if unknown:
            raise InvalidChatMessages(f"{where} has unknown field(s): {', '.join(sorted(unknown))}")
        role, content = item.get("role"), item.get("content")
        if role not in ROLES:
            raise InvalidChatMessages(f"{where}.role must be one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise InvalidChatMessages(f"{where}.content must be a string")
        if len(content) > MAX_CONTENT_CHARS:
            raise ChatTooLarge(f"{where}.content exceeds {MAX_CONTENT_CHARS} characters")
        total += len(content)
        messages.append(ChatMessage(role, content))
    if total > MAX_TOTAL_CHARS:
        raise ChatTooLarge(f"the conversation exceeds {MAX_TOTAL_CHARS} characters")
    if messages[-1].role != "user" or not messages[-1].content.strip():
        raise InvalidChatMessages("the last message must be a non-empty user message")
    return tuple(messages)
