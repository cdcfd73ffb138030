"""Request header limits (total bytes, number of fields), enforced before the app does any work."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

from backend.api.errors import HeadersTooLarge

__all__ = ["HeaderLimit"]


class HeaderLimit:
    """Refuses (431) headers of more than ``max_bytes`` in total or more than ``max_count`` fields.

    uvicorn's httptools parser accepts headers of any size, so the limit is ours. It counts each
    field as ``name: value`` plus its line break, as sent; the request line is not counted. The
    connection is closed after the 431, since the body (if any) is never read.
    """

    def __init__(self, *, max_bytes: int, max_count: int) -> None:
        self.max_bytes = max_bytes
        self.max_count = max_count

    def refusal(self, headers: Sequence[tuple[bytes, bytes]]) -> HeadersTooLarge | None:
        """The error for headers over a limit (the field count is checked first), else None."""
        if len(headers) > self.max_count:
            detail = f"The request has {len(headers)} header fields; at most {self.max_count} are accepted."
            return HeadersTooLarge(detail)
        # ": " and the line break are 4 bytes per field; the lengths are summed in C.
        size = sum(map(len, chain.from_iterable(headers))) + 4 * len(headers)
        if size <= self.max_bytes:
            return None
        return HeadersTooLarge(f"The request headers total {size} bytes; at most {self.max_bytes} are accepted.")
