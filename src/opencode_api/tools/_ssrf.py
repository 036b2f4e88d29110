"""SSRF protection for webfetch: which addresses may be fetched, enforced where aiohttp connects.

The check runs inside an aiohttp resolver, so the address vetted is the address connected to (no
DNS-rebinding window between a check and the connect); IP-literal URLs, which aiohttp never
resolves, are checked by ``check_url`` before every request, redirects included.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence

from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Lookup = Callable[[str, int], Awaitable[Sequence[str]]]
"""``lookup(host, family) -> IP address strings``: the DNS seam (tests inject their own)."""

# Ranges Python's ``is_private``/``is_global`` miss or that differ between 3.11 patch releases.
_EXTRA_BLOCKED: tuple[IPNetwork, ...] = (
    ipaddress.ip_network("100.64.0.0/10"),  # shared address space (carrier-grade NAT)
    ipaddress.ip_network("192.0.0.0/24"),  # IETF protocol assignments
    ipaddress.ip_network("198.18.0.0/15"),  # benchmarking
    ipaddress.ip_network("64:ff9b:1::/48"),  # local-use NAT64
    ipaddress.ip_network("fc00::/7"),  # unique local
    ipaddress.ip_network("fec0::/10"),  # deprecated site-local
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressBlocked(OSError):
    """A URL's host is, or resolves only to, an address webfetch must not reach.

    An ``OSError`` so that aiohttp, which wraps resolver ``OSError``s in
    ``ClientConnectorDNSError``, carries it through to the caller unchanged as ``os_error``.
    """


def blocked_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be fetched (``"loopback"``, ``"private"``, ...), or None if public."""
    if isinstance(ip, ipaddress.IPv6Address):
        # An address embedding an IPv4 address reaches that IPv4 address: judge that one.
        embedded = ip.ipv4_mapped
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is None and ip.sixtofour is not None:
            embedded = ip.sixtofour
        if embedded is None and ip.teredo is not None:
            embedded = ip.teredo[1]
        if embedded is not None:
            reason = blocked_reason(embedded)
            return f"{reason} (embedded in {ip})" if reason else None
    checks = (
        ("unspecified", ip.is_unspecified),
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private or any(ip in net for net in _EXTRA_BLOCKED)),
        ("non-global", not ip.is_global),
    )
    for reason, hit in checks:
        if hit:
            return reason
    return None


def parse_ip_host(host: str) -> IPAddress | None:
    """The address an IP-literal host denotes, legacy IPv4 forms included; None for a name.

    ``2130706433``, ``0x7f.1`` and ``0177.0.0.1`` are all 127.0.0.1 to the C resolver, so they are
    decoded the same way (``inet_aton``) rather than passed along as names.
    """
    candidate = host.strip("[]")
    try:
        return ipaddress.ip_address(candidate.split("%", 1)[0])
    except ValueError:
        pass
    if candidate and all(ch in "0123456789abcdefxABCDEFX." for ch in candidate):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(candidate))
        except OSError:
            return None
    return None


class AddressPolicy:
    """The allowlist (host names, ``*.suffix`` patterns, IPs and CIDRs) and the public-only rule."""

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self._hosts: set[str] = set()
        self._suffixes: list[str] = []
        self._networks: list[IPNetwork] = []
        for raw in allow:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                self._networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if entry.startswith("*."):
                self._suffixes.append(entry[1:])
            else:
                self._hosts.add(entry)

    def host_allowed(self, host: str) -> bool:
        """True when ``host`` (a name) is allowlisted: any address it resolves to is accepted."""
        name = host.lower().rstrip(".")
        return name in self._hosts or any(name.endswith(suffix) for suffix in self._suffixes)

    def check_ip(self, ip: IPAddress, host: str) -> None:
        """Raise ``AddressBlocked`` unless ``ip`` is public or allowlisted."""
        if any(ip.version == net.version and ip in net for net in self._networks):
            return
        reason = blocked_reason(ip)
        if reason is not None:
            target = str(ip) if host.strip("[]") == str(ip) else f"{host} ({ip})"
            raise AddressBlocked(
                f"refusing to fetch {target}: {reason} address "
                "(add the host to WEBFETCH_ALLOW_HOSTS to allow it)"
            )

    def check_url(self, url: URL) -> None:
        """Refuse a URL webfetch must not request: not http(s), no host, or a blocked IP literal.

        Host names are vetted later, at connect time, by ``VettingResolver``.
        """
        if url.scheme not in ("http", "https"):
            raise AddressBlocked(f"only http and https URLs can be fetched, not {url.scheme!r}")
        host = url.raw_host
        if not host:
            raise AddressBlocked(f"URL has no host: {url}")
        ip = parse_ip_host(host)
        if ip is not None:
            self.check_ip(ip, host)


async def system_lookup(host: str, family: int) -> list[str]:
    """Resolve with the event loop's ``getaddrinfo`` (runs in its executor, never blocks)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, family=family, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class VettingResolver(AbstractResolver):
    """An aiohttp resolver that returns only addresses the policy accepts.

    aiohttp connects only to what its resolver returns, so every connection (first request,
    each redirect, a retried connect) goes to a vetted address.
    """

    def __init__(self, policy: AddressPolicy, lookup: Lookup | None = None) -> None:
        self._policy = policy
        self._lookup: Lookup = lookup or system_lookup

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        ip_literal = parse_ip_host(host)
        if ip_literal is not None:
            addresses: Sequence[str] = [str(ip_literal)]
        else:
            try:
                addresses = await self._lookup(host, int(family))
            except socket.gaierror as exc:
                raise OSError(f"cannot resolve host {host}: {exc.strerror or exc}") from exc
        allowed_name = ip_literal is None and self._policy.host_allowed(host)
        results: list[ResolveResult] = []
        first_refusal: AddressBlocked | None = None
        for address in dict.fromkeys(addresses):
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not allowed_name:
                try:
                    self._policy.check_ip(ip, host)
                except AddressBlocked as exc:
                    first_refusal = first_refusal or exc
                    continue
            results.append(
                ResolveResult(
                    hostname=host,
                    host=str(ip),
                    port=port,
                    family=socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
            )
        if not results:
            raise first_refusal or OSError(f"host {host} has no addresses")
        return results

    async def close(self) -> None:
        return None
