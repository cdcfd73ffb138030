"""The webhook SSRF guard, signing, back-off and one delivery attempt, without a server app.

Resolvers are injected, so "DNS" answers private addresses without any lookup, and nothing
here ever connects to a non-loopback address (the socket guard in tests/conftest.py would refuse).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agents.errors import InvalidInput, ProviderNotConfigured
from backend.config import Settings
from backend.runs.records import CacheOutcome, DeliveryStatus, WorkflowRecord, WorkflowStatus
from backend.runs.store import WorkflowStore, create_engine, run_migrations
from backend.runs.store.outbox import WebhookOutbox
from backend.runs.urlguard import UnsafeWebhook, check_target, forbidden_reason
from backend.runs.webhooks import MAX_RESPONSE_BYTES, WebhookConfig, WebhookDispatcher, Webhooks
from tests.webhook_receiver import SECRET


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254", "100.64.0.1", "100.100.100.200",
        "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "198.18.0.1", "192.0.2.1",
        "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "::ffff:10.0.0.1", "::ffff:127.0.0.1",
        "::ffff:169.254.169.254", "64:ff9b::a00:1", "2002:a00:1::", "2001:db8::1",
    ],
)  # fmt: skip
def test_private_and_special_addresses_are_refused(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:93.184.216.34"])
def test_public_addresses_pass(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


def _resolves_to(*addresses: str) -> Any:
    async def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
        family = socket.AF_INET6
        return [(family, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return resolve


async def test_a_name_is_judged_by_every_address_it_resolves_to() -> None:
    public = await check_target("https://hooks.example/x?t=1", allow_hosts=(), resolver=_resolves_to("93.184.216.34"))
    assert public.pinned(public.addresses[0]) == "https://93.184.216.34/x?t=1"
    assert public.host_header == "hooks.example"
    with pytest.raises(UnsafeWebhook, match=r"10\.0\.0\.5, a private address"):
        await check_target("https://mixed.example/", allow_hosts=(), resolver=_resolves_to("93.184.216.34", "10.0.0.5"))
    allowed = await check_target(
        "http://inside.example:8080/", allow_hosts={"inside.example"}, resolver=_resolves_to("10.0.0.5")
    )
    assert str(allowed.pinned(allowed.addresses[0])) == "http://10.0.0.5:8080/"


async def test_an_unresolvable_host_is_refused() -> None:
    async def nxdomain(host: str, port: int) -> list[tuple[Any, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(UnsafeWebhook, match="does not resolve"):
        await check_target("https://nowhere.invalid/", allow_hosts=(), resolver=nxdomain)


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    config = WebhookConfig(secret=SECRET, retry_base=1.0, retry_max=10.0)
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 10.0), (8, 10.0)):
        delay = config.retry_delay(attempt)
        assert ceiling / 2 <= delay <= ceiling


def test_webhook_secret_settings() -> None:
    assert Settings(_env_file=None, webhook_secret=SECRET).signing_secret == SECRET  # type: ignore[call-arg]
    assert Settings(_env_file=None).signing_secret is not None  # type: ignore[call-arg] # dev: a fixed one
    with pytest.raises(ValidationError, match="whsec_"):
        Settings(_env_file=None, webhook_secret="whsec_not base64!")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="16 random bytes"):
        Settings(_env_file=None, webhook_secret="whsec_c2hvcnQ=")  # type: ignore[call-arg]
    prod = {"env": "prod", "secret_key": "s" * 40}
    assert Settings(_env_file=None, **prod).signing_secret is None  # type: ignore[call-arg] # webhooks refused
    dev_secret = Settings(_env_file=None).signing_secret  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="AGENTFLOW_WEBHOOK_SECRET"):
        Settings(_env_file=None, webhook_secret=dev_secret, **prod)  # type: ignore[call-arg]


# --- one delivery attempt against a store -----------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[WorkflowStore]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/hooks.db")
    await run_migrations(engine)
    yield WorkflowStore(engine)
    await engine.dispose()


async def _finished_with_webhook(store: WorkflowStore, url: str) -> WorkflowRecord:
    now = datetime.now(UTC)
    record = WorkflowRecord(
        id="00000000-0000-0000-0000-000000000001",
        workflow_type="reflection",
        status=WorkflowStatus.COMPLETED,
        created_at=now,
        started_at=now,
        finished_at=now,
        input={"topic": "t"},
        result={"final": "text"},
        cache_outcome=CacheOutcome.MISS,
        webhook_url=url,
    )
    return await store.create(record=record)  # final at once: its delivery is written with it


@pytest.fixture
def endless_body() -> Iterator[int]:
    """A loopback server that answers 200 and then streams a body that never ends."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                chunk = b"%x\r\n%s\r\n" % (16384, b"x" * 16384)
                try:
                    while not stop.is_set():
                        connection.sendall(chunk)
                except OSError:  # the client hung up: what we want
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    server.close()


async def test_a_large_answer_is_not_read_past_64_kib(store: WorkflowStore, endless_body: int) -> None:
    await _finished_with_webhook(store, f"http://127.0.0.1:{endless_body}/hook")
    outbox = WebhookOutbox(store.engine)
    config = WebhookConfig(secret=SECRET, timeout=30.0, allow_hosts={"127.0.0.1"})
    dispatcher = WebhookDispatcher(outbox=outbox, store=store, config=config)
    (claimed,) = await outbox.claim(now=datetime.now(UTC), limit=5, lease_seconds=60)
    await dispatcher.deliver(claimed)
    await dispatcher.shutdown(0)
    (row,) = await outbox.rows()
    assert row["status"] == DeliveryStatus.DELIVERED  # answered long before the 30 s timeout
    assert MAX_RESPONSE_BYTES == 64 * 1024


async def test_delivery_rechecks_the_address_and_never_connects_to_a_rebound_one(store: WorkflowStore) -> None:
    record = await _finished_with_webhook(store, "https://rebinding.example/hook")
    outbox = WebhookOutbox(store.engine)
    config = WebhookConfig(secret=SECRET, max_attempts=3)
    # Public at submit (not shown), private by the time of the attempt: DNS rebinding.
    dispatcher = WebhookDispatcher(outbox=outbox, store=store, config=config, resolver=_resolves_to("10.0.0.1"))
    (claimed,) = await outbox.claim(now=datetime.now(UTC), limit=5, lease_seconds=60)
    assert claimed.workflow_id == record.id and claimed.attempt == 1
    await dispatcher.deliver(claimed)
    await dispatcher.shutdown(0)
    (row,) = await outbox.rows()
    # Refused by the guard (a connection attempt would have been a connection_error instead).
    assert row["status"] == DeliveryStatus.PENDING and row["attempts"] == 1
    assert "10.0.0.1, a private address" in row["last_error"]


async def test_the_service_check_is_the_same_for_every_caller() -> None:
    # What RunService.submit(..., webhook=...) runs, whether the URL came in a body or not.
    webhooks = Webhooks(WebhookConfig(secret=SECRET), resolver=_resolves_to("93.184.216.34"))
    assert await webhooks.check("  https://hooks.example/x  ") == "https://hooks.example/x"
    for bad in ("https://hooks.example/" + "x" * 2048, "https://hooks.example/\x00", "http://10.0.0.1/", "file:///x"):
        with pytest.raises(InvalidInput) as refused:
            await Webhooks(WebhookConfig(secret=SECRET)).check(bad)
        assert refused.value.extra["field"] == "body.webhook"
    with pytest.raises(ProviderNotConfigured):
        await Webhooks(WebhookConfig(secret=None)).check("https://hooks.example/x")
