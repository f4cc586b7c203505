"""The SSRF guard against real HTTP servers: what it refuses (before any byte is sent), what it
lets through, and how it reports trouble. Provider files live on 127.0.0.2 (allow-listed);
127.0.0.1 stands for the machine's own services and must never be reached."""

from __future__ import annotations

import pytest
from aigen.netguard import AllowList, HttpError, NetGuard, Refused, TooLarge, Unreachable
from aigen.simulator.serving import serve_asgi

from tests.integration.storage.harness import PROVIDER_HOST, InternalServer, media, provider_guard


async def fetch(guard: NetGuard, url: str) -> bytes:
    async with guard.stream(url) as response:
        response.raise_for_status()
        return await response.read()


async def test_an_allow_listed_provider_file_is_fetched(provider_files):
    assert await fetch(provider_guard(), provider_files.file_url("sample.png")) == media("sample.png")


async def test_ssrf_loopback_127_0_0_1_is_refused(internal):
    with pytest.raises(Refused) as info:
        await fetch(provider_guard(), f"{internal.url}/admin")
    assert "loopback" in info.value.reason
    assert info.value.url == f"{internal.url}/admin"
    assert internal.hits == 0


async def test_ssrf_private_10_x_is_refused():
    with pytest.raises(Refused, match=r"10\.20\.30\.40.*private"):
        await fetch(provider_guard(), "http://10.20.30.40/result.png")


async def test_ssrf_cloud_metadata_169_254_169_254_is_refused():
    with pytest.raises(Refused, match="link-local"):
        await fetch(provider_guard(), "http://169.254.169.254/latest/meta-data/iam/security-credentials/")


async def test_ssrf_file_scheme_is_refused():
    with pytest.raises(Refused, match="scheme 'file'"):
        await fetch(provider_guard(), "file:///etc/passwd")


@pytest.mark.parametrize("scheme_url", ["ftp://files.example.com/a.png", "gopher://127.0.0.1:6379/_INFO"])
async def test_ssrf_other_schemes_are_refused(scheme_url):
    with pytest.raises(Refused, match="only http and https"):
        await fetch(provider_guard(), scheme_url)


async def test_ssrf_redirect_to_an_internal_address_is_refused(provider_files, internal):
    url = f"{provider_files.url}/redirect?to={internal.url}/admin"
    with pytest.raises(Refused, match="loopback") as info:
        await fetch(provider_guard(), url)
    assert info.value.url == f"{internal.url}/admin"  # the hop that was refused
    assert provider_files.hits["/redirect"] == 1
    assert internal.hits == 0


async def test_ssrf_redirect_to_cloud_metadata_is_refused(provider_files):
    with pytest.raises(Refused, match="link-local"):
        await fetch(provider_guard(), f"{provider_files.url}/redirect?to=http://169.254.169.254/latest/")


async def test_ssrf_ipv4_mapped_ipv6_loopback_is_refused(internal):
    port = internal.url.rsplit(":", 1)[1]
    with pytest.raises(Refused, match="loopback"):
        await fetch(provider_guard(), f"http://[::ffff:127.0.0.1]:{port}/admin")
    assert internal.hits == 0


async def test_ssrf_a_host_name_resolving_to_a_private_address_is_refused():
    async def dns(host: str, port: int) -> list[str]:
        return {"cdn.provider.test": ["10.9.8.7"], "mixed.provider.test": ["93.184.216.34", "192.168.1.5"]}[
            host
        ]

    guard = provider_guard(resolver=dns)
    with pytest.raises(Refused, match=r"cdn\.provider\.test resolves to 10\.9\.8\.7"):
        await fetch(guard, "https://cdn.provider.test/out.png")
    # One private answer among public ones is enough to refuse the name.
    with pytest.raises(Refused, match=r"192\.168\.1\.5"):
        await fetch(guard, "https://mixed.provider.test/out.png")


async def test_ssrf_the_connection_goes_to_the_checked_address_not_a_second_dns_answer(provider_files):
    """DNS rebinding: the first answer passes the check, later answers point inside. The guard
    resolves once and connects to what it checked, so the loopback server is never reached."""
    port = int(provider_files.url.rsplit(":", 1)[1])
    rebound = InternalServer()
    async with serve_asgi(rebound.app(), host="127.0.0.1", port=port) as internal_url:
        rebound.url = internal_url
        answers = iter([[PROVIDER_HOST]])
        lookups = []

        async def rebinding_dns(host: str, port: int) -> list[str]:
            lookups.append(host)
            return next(answers, ["127.0.0.1"])

        guard = provider_guard(resolver=rebinding_dns)
        body = await fetch(guard, f"http://files.provider.test:{port}/files/sample.png")
    assert body == media("sample.png")
    assert lookups == ["files.provider.test"]
    assert rebound.hits == 0


async def test_an_allow_listed_host_name_may_resolve_to_a_private_address(provider_files):
    port = provider_files.url.rsplit(":", 1)[1]

    async def dns(host: str, port: int) -> list[str]:
        return [PROVIDER_HOST]

    guard = NetGuard(allow=AllowList.parse("files.internal.test"), resolver=dns)
    assert await fetch(guard, f"http://files.internal.test:{port}/files/sample.mp3") == media("sample.mp3")
    with pytest.raises(Refused):
        await fetch(NetGuard(resolver=dns), f"http://other.internal.test:{port}/files/sample.mp3")


async def test_redirects_are_followed_and_reported(provider_files):
    async with provider_guard().stream(f"{provider_files.url}/redirect?to=/files/sample.mp4") as response:
        assert await response.read() == media("sample.mp4")
    assert response.url == provider_files.file_url("sample.mp4")
    assert response.redirects == (provider_files.file_url("sample.mp4"),)


async def test_more_than_five_redirects_are_refused(provider_files):
    with pytest.raises(Refused, match="more than 5 redirects"):
        await fetch(provider_guard(), f"{provider_files.url}/loop/0")
    assert sum(n for path, n in provider_files.hits.items() if path.startswith("/loop/")) == 6


async def test_a_declared_length_over_the_cap_is_refused_before_reading(provider_files):
    with pytest.raises(TooLarge, match="2000000 bytes"):
        await fetch(provider_guard(max_bytes=1_000_000), f"{provider_files.url}/large/2000000.mp4")


async def test_an_undeclared_length_is_cut_off_at_the_cap(provider_files):
    received: list[int] = []

    async def read_all() -> None:
        async with provider_guard(max_bytes=1_000_000).stream(
            f"{provider_files.url}/chunked/3000000.mp4"
        ) as response:
            async for chunk in response.aiter_bytes():
                received.append(len(chunk))

    with pytest.raises(TooLarge, match="exceeds 1000000 bytes"):
        await read_all()
    assert 0 < sum(received) <= 1_000_000


async def test_failures_say_whether_a_retry_can_help(provider_files):
    with pytest.raises(HttpError) as missing:
        await fetch(provider_guard(), provider_files.file_url("nothing.png"))
    assert missing.value.status == 404
    assert not missing.value.retryable
    provider_files.fail["/files/sample.png"] = 1
    with pytest.raises(HttpError) as busy:
        await fetch(provider_guard(), provider_files.file_url("sample.png"))
    assert busy.value.status == 503
    assert busy.value.retryable
    with pytest.raises(Unreachable) as down:
        await fetch(provider_guard(), f"http://{PROVIDER_HOST}:1/files/sample.png")
    assert down.value.retryable
    assert "cannot connect" in down.value.reason
