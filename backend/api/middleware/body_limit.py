"""Request body limit counted on the bytes actually received (chunked bodies included)."""

from __future__ import annotations

from starlette.types import Message, Receive

from agents.errors import PayloadTooLarge

__all__ = ["BODYLESS_METHODS", "BodyLimit", "replaying"]

#: Methods whose body (if any) is neither read nor limited here.
BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "DELETE"})


class BodyLimit:
    """Reads a request's body in full, refusing (413) once it passes ``max_bytes``, whatever
    Content-Length claimed.

    Bodies are small by contract (64 KiB default), so the body is read first and replayed to the
    app: the app never sees a partial body and never answers before the limit is known.
    """

    def __init__(self, *, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    async def read(self, receive: Receive, declared_length: bytes | None) -> Receive | None:
        """A ``receive`` that replays the whole body, or None when the client went away first.

        Raises:
            PayloadTooLarge: Content-Length, or the bytes received, pass ``max_bytes``.
        """
        if declared_length is not None and declared_length.isdigit() and int(declared_length) > self.max_bytes:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise self._too_large()
            chunks.append(chunk)
            more = message.get("more_body", False)
        return replaying(b"".join(chunks), receive)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"The request body is larger than {self.max_bytes} bytes.")


def replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` whole (one message), then whatever ``receive`` gives."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
