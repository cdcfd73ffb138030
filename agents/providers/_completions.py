"""The OpenAI SDK's ``chat.completions`` resource, minus two per-call costs ``ChatOpenAI`` never uses.

``AsyncCompletions.create`` (1) passes every request body through ``async_maybe_transform``,
which walks the body against the SDK's TypedDict annotations (every message, every content part,
resolving unions and ``Annotated`` metadata at each level) to apply key aliases and base64
formats, and (2) builds a ``ChatCompletion`` model (or a ``ChatCompletionChunk`` per streamed
chunk) from the answer's JSON. ``ChatOpenAI`` then turns that model straight back into a dict
(``model_dump``) before reading it: it accepts a plain dict answer (and dict chunks) as well.
Profiled under the bench (issue 16), the walk cost ~0.4 ms per call and building then dumping
the model ~0.2 ms. A chat-completions body has no aliased keys, and the messages ``ChatOpenAI``
sends are already plain JSON types, so the walk returns what it was given.

``UntransformedCompletions`` is the SDK's own resource class with ``create`` posting the body as
given and answering the decoded JSON (``cast_to=object``), through the same client (``_post``:
auth, headers, timeouts, error statuses raised as the SDK's exceptions, the SDK's raw-response
and stream types). ``ChatOpenAI`` keeps calling ``async_client.create`` and
``async_client.with_raw_response.create`` as it always does; ``ChatProvider`` installs this as
the model's ``async_client``.
"""

from __future__ import annotations

from typing import Any

import httpx2
from openai import AsyncStream, NotGiven, not_given
from openai._base_client import make_request_options
from openai.resources.chat.completions import AsyncCompletions

__all__ = ["UntransformedCompletions"]


class UntransformedCompletions(AsyncCompletions):
    """``AsyncCompletions`` whose ``create`` sends its keyword arguments as the JSON body and
    answers the response's JSON as plain dicts (one per chunk when streamed)."""

    async def create(  # type: ignore[override]
        self,
        *,
        extra_headers: dict[str, str] | None = None,
        extra_query: dict[str, object] | None = None,
        extra_body: dict[str, object] | None = None,
        timeout: float | httpx2.Timeout | NotGiven | None = not_given,  # noqa: ASYNC109 - the SDK's signature
        **body: Any,
    ) -> dict[str, Any] | AsyncStream[object]:
        """POST ``/chat/completions`` with ``body`` as given (the SDK's ``create``, minus the
        transform), answering the JSON undecorated."""
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
            # ``object``: the SDK hands the decoded JSON back as is (``_process_response_data``).
            cast_to=object,  # type: ignore[arg-type]
            stream=stream,
            stream_cls=AsyncStream[object],
        )
