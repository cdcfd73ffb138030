"""SSRF guard for webhook URLs: which URLs the server may POST to, and which address it connects to.

Rules: http or https only; no credentials in the URL; the host must resolve, and every address
it resolves to must be public: loopback, private, link-local, shared (CGNAT), multicast,
reserved, unspecified and cloud-metadata addresses are refused, also when carried inside an
IPv6 address (IPv4-mapped, 6to4, Teredo, NAT64). A host listed in ``AGENTFLOW_WEBHOOK_ALLOW_HOSTS``
skips the address rules (it still resolves). The check runs at submit and again before every
delivery attempt, and the attempt connects to the address that was checked (DNS rebinding
cannot swap it in between).

Hand-written on purpose: no maintained Python library both classifies the addresses and pins
the connection for httpx (``advocate`` is unmaintained and speaks only ``requests``); the
classification is the standard library's ``ipaddress``, the URL parsing httpx's own, so the URL
checked is exactly the URL sent.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = ["METADATA_ADDRESSES", "Resolver", "UnsafeWebhook", "WebhookTarget", "check_target", "forbidden_reason"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``(host, port) → getaddrinfo results``; the event loop's ``getaddrinfo`` unless a test injects one.
Resolver = Callable[[str, int], Awaitable[list[tuple[Any, ...]]]]

#: Cloud instance-metadata endpoints (AWS, GCP, Azure, Oracle: 169.254.169.254; AWS IPv6: fd00:ec2::254;
#: Alibaba: 100.100.100.200). The general rules refuse them too; they are named for a clearer message.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2")
)
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_RESOLVE_TIMEOUT = 5.0


class UnsafeWebhook(ValueError):
    """A webhook URL the server refuses to call; the message says why (safe to show)."""


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """A checked webhook URL and the addresses its host resolved to (all allowed)."""

    url: httpx.URL
    addresses: tuple[IPAddress, ...]

    @property
    def host_header(self) -> str:
        """The ``Host`` header the receiver expects (the URL's, not the pinned address)."""
        return self.url.netloc.decode("ascii")

    def pinned(self, address: IPAddress) -> httpx.URL:
        """The URL with its host replaced by ``address``: the connection goes where the check looked."""
        return self.url.copy_with(host=str(address))


def forbidden_reason(address: IPAddress) -> str | None:
    """Why a webhook may not target ``address`` (None: a public address)."""
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if embedded is None and any(address in network for network in _NAT64):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            inner = forbidden_reason(embedded)
            return f"{inner} (inside an IPv6 address)" if inner else None
    for reason, flagged in (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        # Left: shared address space (100.64.0.0/10, CGNAT) and other special-purpose ranges.
        ("not globally routable", not address.is_global),
    ):
        if flagged:
            return f"a {reason} address"
    return None


def _parse(url: str) -> httpx.URL:
    import httpx  # on the first webhook: httpx (with its CLI's rich and pygments) is no part of start-up

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:
        raise UnsafeWebhook(f"Not a valid URL: {exc}.") from None
    if parsed.scheme not in ("http", "https"):
        raise UnsafeWebhook("The webhook URL must use http or https.")
    if parsed.userinfo:
        raise UnsafeWebhook("The webhook URL must not carry credentials (user:password@); sign-in is by signature.")
    if not parsed.host:
        raise UnsafeWebhook("The webhook URL has no host.")
    return parsed


async def _getaddrinfo(host: str, port: int) -> list[tuple[Any, ...]]:
    return await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)


async def check_target(url: str, *, allow_hosts: Collection[str], resolver: Resolver | None = None) -> WebhookTarget:
    """Parse ``url``, resolve its host and vet every address; raises UnsafeWebhook when refused.

    Nothing connects to the target here: resolving is the only network traffic.
    """
    parsed = _parse(url)
    host = parsed.host.lower()
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        async with asyncio.timeout(_RESOLVE_TIMEOUT):
            infos = await (resolver or _getaddrinfo)(host, port)
    except (OSError, TimeoutError, UnicodeError) as exc:
        raise UnsafeWebhook(f"The webhook host {host!r} does not resolve ({exc.__class__.__name__}).") from None
    addresses: list[IPAddress] = []
    for info in infos:
        # Scope ids ("fe80::1%eth0") are dropped: the address itself decides.
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeWebhook(f"The webhook host {host!r} does not resolve.")
    if host not in allow_hosts:
        for address in addresses:
            reason = forbidden_reason(address)
            if reason is not None:
                raise UnsafeWebhook(
                    f"The webhook host {host!r} resolves to {address}, {reason}; webhooks go to public "
                    "addresses only (an operator may allow a host with AGENTFLOW_WEBHOOK_ALLOW_HOSTS)."
                )
    return WebhookTarget(url=parsed, addresses=tuple(addresses))
