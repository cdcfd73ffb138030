"""The default first segment of every Redis key the provider limits use.

Kept apart from ``shared_limits`` so a process without Redis never imports redis-py (whose
import pulls in OpenTelemetry's SDK and psutil: ~40 MiB and a second of start-up).
"""

from __future__ import annotations

__all__ = ["KEY_PREFIX"]

KEY_PREFIX = "agentflow"
