"""The SSRF guard's address rules and allow-list, without any network."""

from __future__ import annotations

import ipaddress

import httpx
import pytest
from aigen.netguard import AllowList, NetGuard, Refused, Target, blocked_reason, check_address


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.0.10", "private"),
        ("100.64.1.1", "private"),  # carrier-grade NAT, shared address space
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.10", "private"),  # documentation range
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "private"),  # unique-local (AWS's IPv6 metadata address)
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:10.1.1.1", "private"),
        ("2002:a00:1::", "private"),  # 6to4 wrapping 10.0.0.1
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 wrapping 127.0.0.1
    ],
)
def test_non_public_addresses_are_blocked(address, why):
    reason = blocked_reason(ipaddress.ip_address(address))
    assert reason is not None
    assert why in reason


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address):
    assert blocked_reason(ipaddress.ip_address(address)) is None


def test_the_allow_list_takes_hosts_addresses_and_networks():
    allow = AllowList.parse(" 127.0.0.1, 10.20.0.0/16 ,files.internal.,[::1], ")
    assert allow.allows_address(ipaddress.ip_address("127.0.0.1"))
    assert not allow.allows_address(ipaddress.ip_address("127.0.0.2"))
    assert allow.allows_address(ipaddress.ip_address("10.20.3.4"))
    assert allow.allows_address(ipaddress.ip_address("::ffff:10.20.3.4"))  # the same address, mapped
    assert allow.allows_address(ipaddress.ip_address("::1"))
    assert allow.allows_host("FILES.internal")
    assert allow.allows_host("files.internal.")
    assert not allow.allows_host("internal")
    assert AllowList.from_env({"AIGEN_NETGUARD_ALLOW": "127.0.0.1"}).allows_address(
        ipaddress.ip_address("127.0.0.1")
    )
    assert AllowList.from_env({}) == AllowList()


def test_a_refusal_names_the_url_the_host_the_address_and_the_way_out():
    with pytest.raises(Refused) as info:
        check_address(
            "http://metadata.internal/x",
            "metadata.internal",
            ipaddress.ip_address("169.254.169.254"),
            AllowList(),
        )
    message = str(info.value)
    assert message.startswith("http://metadata.internal/x: metadata.internal resolves to 169.254.169.254")
    assert "AIGEN_NETGUARD_ALLOW" in message
    check_address(
        "http://x/", "x", ipaddress.ip_address("169.254.169.254"), AllowList.parse("169.254.0.0/16")
    )


@pytest.mark.parametrize(
    ("url", "address", "pinned", "host"),
    [
        (
            "https://cdn.example.com/a.png?x=1",
            "93.184.216.34",
            "https://93.184.216.34/a.png?x=1",
            "cdn.example.com",
        ),
        (
            "http://cdn.example.com:8080/a",
            "93.184.216.34",
            "http://93.184.216.34:8080/a",
            "cdn.example.com:8080",
        ),
        ("https://cdn.example.com/a", "2606:4700::1", "https://[2606:4700::1]/a", "cdn.example.com"),
        ("http://[2606:4700::1]:81/a", "2606:4700::1", "http://[2606:4700::1]:81/a", "[2606:4700::1]:81"),
    ],
)
def test_requests_go_to_the_checked_address_with_the_original_host(url, address, pinned, host):
    target = Target(httpx.URL(url), ipaddress.ip_address(address))
    assert str(target.pinned_url()) == pinned
    assert target.host_header() == host


async def test_every_answer_of_a_name_must_pass():
    async def dns(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.5"]

    with pytest.raises(Refused, match=r"10\.0\.0\.5"):
        await NetGuard(resolver=dns).check("https://cdn.example.com/a.png")
    target = await NetGuard(resolver=dns, allow=AllowList.parse("10.0.0.0/8")).check(
        "https://cdn.example.com/a.png"
    )
    assert str(target.address) == "93.184.216.34"


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://x/a", "data:image/png;base64,AAAA", "//no-scheme/a", "http:///nohost"],
)
async def test_only_http_and_https_urls_with_a_host_are_fetched(url):
    with pytest.raises(Refused):
        await NetGuard().check(url)
