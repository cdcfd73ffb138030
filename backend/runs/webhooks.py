"""Webhooks: vet a run's webhook URL at submit, then POST its final record from the durable outbox.

- **Submit.** ``Webhooks.check`` runs the SSRF guard (``backend.runs.urlguard``) before anything is
  written; a refused URL is ``InvalidInput`` naming ``body.webhook``.
- **Outbox.** The store writes a delivery in the transaction that makes the run final
  (``backend.runs.store.outbox``); nothing here has to be told a run ended.
- **Dispatch.** Every process that serves or works runs a ``WebhookDispatcher``: it polls for due
  deliveries, claims a few (one lease each), and POSTs the record as ``GET /workflows/{id}`` shows
  it (``backend.runs.public.webhook_payload``), signed per Standard Webhooks with the
  ``standardwebhooks`` library: ``webhook-id`` (the delivery's id, the same on every retry),
  ``webhook-timestamp`` and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>``).
- **Each attempt** re-checks the URL (DNS may have changed), connects to the address it checked,
  follows no redirect, gives up after ``timeout`` seconds, and reads at most 64 KiB of the answer.
  A 2xx delivers; anything else is retried with exponential back-off and jitter until
  ``max_attempts``, then the delivery is ``failed``. Every attempt is logged under the run's
  correlation id and counted in ``agentflow_webhook_attempts``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from standardwebhooks.webhooks import Webhook

from agents import context
from agents.errors import InvalidInput, ProviderNotConfigured
from agents.metrics import metrics
from backend.runs.public import webhook_payload
from backend.runs.records import DeliveryStatus
from backend.runs.store import WorkflowStore, utcnow
from backend.runs.store.outbox import ClaimedDelivery, WebhookOutbox
from backend.runs.urlguard import Resolver, UnsafeWebhook, check_target
from workflows.base import WEBHOOK_URL_MAX_LENGTH as MAX_URL_LENGTH
from workflows.base import unstorable

if TYPE_CHECKING:
    import httpx

__all__ = ["MAX_RESPONSE_BYTES", "WebhookConfig", "WebhookDispatcher", "Webhooks"]

logger = logging.getLogger("agentflow.webhooks")

#: The most of a receiver's answer ever read; the rest is left unread (the body is not used).
MAX_RESPONSE_BYTES = 64 * 1024
_USER_AGENT = "agentflow-webhooks/1"


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """How webhooks are checked and delivered (from ``AGENTFLOW_WEBHOOK_*``)."""

    #: ``whsec_`` + base64 key (Standard Webhooks); None: webhooks are refused at submit.
    secret: str | None
    max_attempts: int = 8
    timeout: float = 10.0
    retry_base: float = 5.0
    retry_max: float = 3600.0
    poll_interval: float = 1.0
    allow_hosts: Collection[str] = frozenset()
    #: Deliveries in flight at once per process.
    concurrency: int = 16

    def retry_delay(self, attempt: int) -> float:
        """Seconds before the attempt after ``attempt`` (1-based): doubling, capped, with jitter."""
        delay: float = min(self.retry_max, self.retry_base * 2.0 ** (attempt - 1))
        return delay * random.uniform(0.5, 1.0)


class Webhooks:
    """The submit-time side: is this webhook URL acceptable?"""

    def __init__(self, config: WebhookConfig, *, resolver: Resolver | None = None) -> None:
        self.config = config
        self.resolver = resolver

    async def check(self, url: str) -> str:
        """The URL to store for a run, once it passed the SSRF guard (no connection is made)."""
        if self.config.secret is None:
            raise ProviderNotConfigured(
                "Webhooks need AGENTFLOW_WEBHOOK_SECRET on the server to sign them.",
                variable="AGENTFLOW_WEBHOOK_SECRET",
            )
        # The same shape rules as the request field, for callers that pass ``webhook=`` directly.
        url = url.strip()
        problem = unstorable(url) or (f"At most {MAX_URL_LENGTH} characters." if len(url) > MAX_URL_LENGTH else None)
        if problem is not None:
            raise InvalidInput(f"The webhook URL is not acceptable: {problem}", field="body.webhook")
        try:
            target = await check_target(url, allow_hosts=self.config.allow_hosts, resolver=self.resolver)
        except UnsafeWebhook as exc:
            raise InvalidInput(str(exc), field="body.webhook") from None
        return str(target.url)


class WebhookDispatcher:
    """Delivers due webhooks from the outbox, in this process, until shut down."""

    def __init__(
        self,
        *,
        outbox: WebhookOutbox,
        store: WorkflowStore,
        config: WebhookConfig,
        resolver: Resolver | None = None,
    ) -> None:
        self.outbox = outbox
        self.store = store
        self.config = config
        self.resolver = resolver
        self._signer = Webhook(config.secret) if config.secret else None
        self._client: httpx.AsyncClient | None = None  # made by the first attempt (see ``_http``)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        if self._signer is not None:
            self._loop = asyncio.create_task(self._run(), name="webhook-dispatcher")

    async def shutdown(self, grace: float) -> None:
        """Stop claiming; give attempts in flight ``grace`` seconds, then leave them to their lease."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace)
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    def wake(self) -> None:
        """Look for due deliveries now rather than at the next poll."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            try:
                await self.dispatch_due()
            except Exception:
                logger.exception("webhook dispatch failed", extra={"event": "webhook_dispatch_failed"})
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.config.poll_interval):
                    await self._wake.wait()
            self._wake.clear()

    # --- delivery -----------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        # Made on the first attempt, not at start-up: httpx's import (with its command line's rich
        # and pygments) and an SSL context are ~70 ms of every start, and most servers never send
        # a webhook.
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,  # a proxy from the environment would connect where the guard did not look
                timeout=httpx.Timeout(self.config.timeout),
                # No pooled connections: each attempt connects to the address it just checked.
                limits=httpx.Limits(max_keepalive_connections=0),
                headers={"user-agent": _USER_AGENT},
            )
        return self._client

    @property
    def _lease_seconds(self) -> float:
        # Longer than any attempt can take (timeout, DNS, settling), so a live claimer is never overtaken.
        return self.config.timeout * 2 + 10

    async def dispatch_due(self) -> int:
        """Claim due deliveries (as many as there are free slots) and start their attempts."""
        free = self.config.concurrency - len(self._tasks)
        if free <= 0:
            return 0
        claimed = await self.outbox.claim(now=utcnow(), limit=free, lease_seconds=self._lease_seconds)
        for delivery in claimed:
            task = asyncio.create_task(self.deliver(delivery), name=f"webhook-{delivery.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(claimed)

    async def deliver(self, delivery: ClaimedDelivery) -> None:
        """Make one attempt of ``delivery`` and record its outcome (never raises)."""
        try:
            record = await self.store.get(workflow_id=delivery.workflow_id)
            if record is None:  # never expected: deliveries are written with their run
                await self.outbox.settle(
                    delivery=delivery, now=utcnow(), status=DeliveryStatus.FAILED, error="the run no longer exists"
                )
                return
            with context.bind(
                correlation_id=record.correlation_id, workflow_id=record.id, workflow_type=record.workflow_type
            ):
                await self._attempt(delivery, webhook_payload(record))
        except Exception:
            logger.exception(
                "webhook attempt crashed",
                extra={"event": "webhook_attempt_crashed", "webhook_id": delivery.id, "attempt": delivery.attempt},
            )

    async def _attempt(self, delivery: ClaimedDelivery, body: bytes) -> None:
        import httpx

        assert self._signer is not None
        client = self._http()
        started = time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(self.config.timeout):
                target = await check_target(delivery.url, allow_hosts=self.config.allow_hosts, resolver=self.resolver)
                sent_at = datetime.now(UTC)
                headers = {
                    "host": target.host_header,
                    "content-type": "application/json",
                    "webhook-id": delivery.id,
                    "webhook-timestamp": str(int(sent_at.timestamp())),
                    "webhook-signature": self._signer.sign(msg_id=delivery.id, timestamp=sent_at, data=body),
                }
                extensions = {"sni_hostname": target.url.host} if target.url.scheme == "https" else {}
                request = client.build_request(
                    "POST", target.pinned(target.addresses[0]), content=body, headers=headers, extensions=extensions
                )
                response = await client.send(request, stream=True)
                try:
                    status_code = response.status_code
                    await _drain(response)
                finally:
                    await response.aclose()
            outcome = "ok" if 200 <= status_code < 300 else "http_error"
            if outcome != "ok":
                error = f"HTTP {status_code}" + (" (redirects are not followed)" if 300 <= status_code < 400 else "")
        except UnsafeWebhook as exc:
            outcome, error = "refused", str(exc)
        except (TimeoutError, httpx.TimeoutException):
            outcome, error = "timeout", f"no answer within {self.config.timeout:g} s"
        except httpx.HTTPError as exc:
            outcome, error = "connection_error", f"{exc.__class__.__name__}: {exc}"
        await self._settle(delivery, outcome, error, status_code, started)

    async def _settle(
        self, delivery: ClaimedDelivery, outcome: str, error: str | None, status_code: int | None, started: float
    ) -> None:
        now = utcnow()
        retry_in: float | None = None
        if outcome == "ok":
            status = DeliveryStatus.DELIVERED
        elif delivery.attempt >= self.config.max_attempts:
            status = DeliveryStatus.FAILED
        else:
            status, retry_in = DeliveryStatus.PENDING, self.config.retry_delay(delivery.attempt)
        settled = await self.outbox.settle(
            delivery=delivery,
            now=now,
            status=status,
            error=error,
            status_code=status_code,
            retry_at=now + timedelta(seconds=retry_in) if retry_in is not None else None,
        )
        instruments = metrics()
        instruments.child(instruments.webhook_attempts, outcome).inc()
        if settled and status is not DeliveryStatus.PENDING:
            instruments.child(instruments.webhook_deliveries, status.value).inc()
        logger.log(
            logging.INFO if outcome == "ok" else logging.WARNING,
            "webhook attempt %d: %s",
            delivery.attempt,
            outcome if error is None else error,
            extra={
                "event": "webhook_attempt",
                "webhook_id": delivery.id,
                "attempt": delivery.attempt,
                "outcome": outcome,
                "status_code": status_code,
                "delivery_status": status.value,
                "retry_in_s": round(retry_in, 3) if retry_in is not None else None,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "url_host": _host(delivery.url),  # not the URL: its query may hold a token
                "stale_claim": not settled,
            },
        )


def _host(url: str) -> str:
    import httpx

    return httpx.URL(url).host


async def _drain(response: httpx.Response) -> None:
    """Read at most ``MAX_RESPONSE_BYTES`` of the answer; the rest is never read."""
    received = 0
    async for chunk in response.aiter_raw():
        received += len(chunk)
        if received >= MAX_RESPONSE_BYTES:
            return
