"""The OpenAI SDK's ``chat.completions`` resource without its per-call walk of the parameters.

``AsyncCompletions.create`` passes every request body through ``async_maybe_transform``, which
walks the body against the SDK's TypedDict annotations (every message, every content part,
resolving unions and ``Annotated`` metadata at each level) to apply key aliases and base64
formats. Profiled under the bench (issue 16) that walk was ~8 % of a server's CPU: ~0.4 ms per
call. A chat-completions body has no aliased keys, and the messages ``ChatOpenAI`` sends are
already plain JSON types, so the walk returns what it was given.

``UntransformedCompletions`` is the SDK's own resource class with ``create`` posting the body as
given, through the same client (``_post``: auth, headers, retries, timeouts, the SDK's response
and stream types are the SDK's). ``ChatOpenAI`` keeps calling ``async_client.create`` and
``async_client.with_raw_response.create`` as it always does; ``ChatProvider`` installs this as
the model's ``async_client``.
"""

from __future__ import annotations

from typing import Any

import httpx2
from openai import AsyncStream, NotGiven, not_given
from openai._base_client import make_request_options
from openai.resources.chat.completions import AsyncCompletions
from openai.types.chat import ChatCompletion, ChatCompletionChunk

__all__ = ["UntransformedCompletions"]


class UntransformedCompletions(AsyncCompletions):
    """``AsyncCompletions`` whose ``create`` sends its keyword arguments as the JSON body."""

    async def create(  # type: ignore[override]
        self,
        *,
        extra_headers: dict[str, str] | None = None,
        extra_query: dict[str, object] | None = None,
        extra_body: dict[str, object] | None = None,
        timeout: float | httpx2.Timeout | NotGiven | None = not_given,  # noqa: ASYNC109 - the SDK's signature
        **body: Any,
    ) -> ChatCompletion | AsyncStream[ChatCompletionChunk]:
        """POST ``/chat/completions`` with ``body`` as given (the SDK's ``create``, minus the transform)."""
        stream = bool(body.get("stream"))
        return await self._post(
            "/chat/completions",
            body=body,
            options=make_request_options(
                extra_headers=extra_headers,
                extra_query=extra_query,
                extra_body=extra_body,
                timeout=timeout,
                security={"bearer_auth": True},
            ),
            cast_to=ChatCompletion,
            stream=stream,
            stream_cls=AsyncStream[ChatCompletionChunk],
        )
