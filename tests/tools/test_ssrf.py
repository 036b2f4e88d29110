"""Address policy and the vetting resolver (no network: lookups are injected)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence

import pytest
from yarl import URL

from opencode_api.tools import AddressBlocked, AddressPolicy, VettingResolver, blocked_reason
from opencode_api.tools._ssrf import parse_ip_host


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "private"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback (embedded in ::ffff:7f00:1)"),
        ("::ffff:169.254.169.254", "link-local (embedded in ::ffff:a9fe:a9fe)"),
        ("64:ff9b::a00:1", "private (embedded in 64:ff9b::a00:1)"),
        ("2002:7f00:1::", "loopback (embedded in 2002:7f00:1::)"),
    ],
)
def test_blocked_addresses(address: str, reason: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses(address: str) -> None:
    assert blocked_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("[::1]", "::1"),
        ("example.com", None),
        ("deadbeef", None),
        ("cafe.be", None),
    ],
)
def test_parse_ip_host(host: str, expected: str | None) -> None:
    parsed = parse_ip_host(host)
    assert (str(parsed) if parsed else None) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "only http and https URLs can be fetched, not 'file'"),
        ("ftp://example.com/x", "not 'ftp'"),
        ("http://2130706433/", "refusing to fetch 2130706433 (127.0.0.1): loopback address"),
        ("http://[::1]:8080/", "refusing to fetch ::1: loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "link-local address"),
    ],
)
def test_check_url(url: str, message: str) -> None:
    with pytest.raises(AddressBlocked) as info:
        AddressPolicy().check_url(URL(url))
    assert message in str(info.value)


def test_allowlist_entries() -> None:
    policy = AddressPolicy(["intranet.corp", "*.svc.local", "10.0.0.0/8", "::1"])
    assert policy.host_allowed("INTRANET.corp.")
    assert policy.host_allowed("api.svc.local")
    assert not policy.host_allowed("svc.local.evil.com")
    policy.check_ip(ipaddress.ip_address("10.9.8.7"), "10.9.8.7")
    policy.check_ip(ipaddress.ip_address("::1"), "::1")
    with pytest.raises(AddressBlocked):
        policy.check_ip(ipaddress.ip_address("192.168.0.1"), "192.168.0.1")


def _lookup(table: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    calls: list[str] = []

    async def lookup(host: str, family: int) -> Sequence[str]:
        calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return lookup, calls


async def test_resolver_refuses_a_public_name_with_a_private_address() -> None:
    lookup, calls = _lookup({"innocent.example": ["10.0.0.5"]})
    resolver = VettingResolver(AddressPolicy(), lookup)
    with pytest.raises(AddressBlocked, match=r"innocent.example \(10.0.0.5\): private"):
        await resolver.resolve("innocent.example", 80)
    assert calls == ["innocent.example"]


async def test_resolver_keeps_only_vetted_addresses() -> None:
    lookup, _ = _lookup({"mixed.example": ["127.0.0.1", "8.8.8.8", "fc00::2", "8.8.8.8"]})
    results = await VettingResolver(AddressPolicy(), lookup).resolve("mixed.example", 443)
    assert [(r["host"], r["port"], r["family"]) for r in results] == [
        ("8.8.8.8", 443, socket.AF_INET)
    ]


async def test_resolver_allowlisted_name_may_be_private() -> None:
    lookup, _ = _lookup({"intranet.corp": ["10.0.0.5", "fd00::5"]})
    results = await VettingResolver(AddressPolicy(["intranet.corp"]), lookup).resolve(
        "intranet.corp", 80
    )
    assert [r["host"] for r in results] == ["10.0.0.5", "fd00::5"]
    assert results[1]["family"] == socket.AF_INET6


async def test_resolver_unknown_host_is_an_os_error() -> None:
    lookup, _ = _lookup({})
    with pytest.raises(OSError, match=r"cannot resolve host nowhere\.example"):
        await VettingResolver(AddressPolicy(), lookup).resolve("nowhere.example", 80)


async def test_system_lookup_of_localhost_is_refused() -> None:
    with pytest.raises(AddressBlocked, match="localhost"):
        await VettingResolver(AddressPolicy()).resolve("localhost", 80)
