"""The admin web UI as files the gateway serves: every page and module with the content type a
browser accepts, `/` sending people to it, nothing loaded from another origin, every module
import resolving to a file that exists, and no way out of the UI's folder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from aigen.netguard import NetGuard

from services.gateway.app import create_app
from services.gateway.deps import Gateway, Services
from services.gateway.links import ResultLinks
from services.gateway.ratelimit import RateLimiter
from services.gateway.settings import GatewaySettings
from services.gateway.web import STATIC_DIR

EXPECTED_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
FILES = sorted(p for p in STATIC_DIR.rglob("*") if p.is_file())
MODULES = [p for p in FILES if p.suffix == ".js"]

# Module specifiers: `import … from "x"`, `export … from "x"`, `import("x")`, `import "x"`.
IMPORT = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["']([^"']+)["']""")
# Anything the page itself would fetch: src/href attributes, CSS url() and @import.
HTML_REFERENCE = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""")
CSS_REFERENCE = re.compile(r"""url\(\s*["']?([^"')]+)|@import\s+["']([^"']+)""")
# A URL with a scheme or a protocol-relative one, as a whole string literal.
ABSOLUTE_LITERAL = re.compile(r"""["'`](?:[a-z][a-z0-9+.-]*:)?//[^"'`\s]+["'`]""", re.IGNORECASE)
ALLOWED_LITERALS = {'"https://…"', '"http://www.w3.org/2000/svg"'}


def app() -> Any:
    gateway = Gateway(
        settings=GatewaySettings(admin_token="t" * 20),
        public_url="http://testserver",
        db=None,  # type: ignore[arg-type]
        services=Services(None, None, None, None, None),  # type: ignore[arg-type]
        keys=None,  # type: ignore[arg-type]
        limiter=RateLimiter(),
        holds=None,  # type: ignore[arg-type]
        ledger=None,  # type: ignore[arg-type]
        links=ResultLinks(None, None),
        signer=None,
        guard=NetGuard(),
        callback_secret="s" * 32,
    )
    return create_app(gateway)


@pytest.fixture
async def client():
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app()), base_url="http://testserver"
    ) as http:
        yield http


def url_of(path: Path) -> str:
    return "/ui/" + path.relative_to(STATIC_DIR).as_posix()


async def test_root_and_bare_prefix_lead_to_the_ui(client):
    for path in ("/", "/ui"):
        answer = await client.get(path)
        assert answer.status_code in (307, 308), path
        assert answer.headers["location"].endswith("/ui/")
    index = await client.get("/ui/")
    assert index.status_code == 200
    assert index.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="js/main.js">' in index.text
    assert "/ui/" not in (await client.get("/openapi.json")).json()["paths"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(STATIC_DIR).as_posix())
async def test_every_file_is_served_with_its_content_type_and_headers(client, path: Path):
    answer = await client.get(url_of(path))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == EXPECTED_TYPES[path.suffix]
    assert answer.content == path.read_bytes()
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-cache"
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert "style-src 'self'" in policy
    # Revalidation is cheap: the file's ETag answers 304.
    again = await client.get(url_of(path), headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304


async def test_missing_files_and_escapes_are_not_found(client):
    for path in ("/ui/nope.js", "/ui/js/../../__init__.py", "/ui/..%2f__init__.py", "/ui/%2e%2e/__init__.py"):
        answer = await client.get(path)
        assert answer.status_code == 404, path
        assert "from __future__" not in answer.text


def test_nothing_is_loaded_from_another_origin():
    for path in FILES:
        text = path.read_text(encoding="utf-8")
        references = (
            [m.group(1) for m in HTML_REFERENCE.finditer(text)] if path.suffix in (".html", ".svg") else []
        )
        if path.suffix == ".css":
            references = [a or b for a, b in CSS_REFERENCE.findall(text)]
        if path.suffix == ".js":
            references = IMPORT.findall(text)
        for reference in references:
            assert not re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", reference, re.IGNORECASE), (path, reference)
        strays = set(ABSOLUTE_LITERAL.findall(text)) - ALLOWED_LITERALS
        assert not strays, f"{path.name} names other origins: {strays}"


def test_every_module_import_resolves_and_every_module_is_used():
    reachable: set[Path] = set()
    pending = [STATIC_DIR / "js" / "main.js"]
    while pending:
        module = pending.pop()
        if module in reachable:
            continue
        reachable.add(module)
        for specifier in IMPORT.findall(module.read_text(encoding="utf-8")):
            assert specifier.startswith(("./", "../")), (
                f"{module.name}: bare import {specifier!r} needs a build step"
            )
            target = (module.parent / specifier).resolve()
            assert target.is_file(), f"{module.name} imports {specifier}, which does not exist"
            pending.append(target)
    assert {m.resolve() for m in MODULES} == reachable, "modules nothing imports"


def test_the_page_references_only_files_that_exist():
    index = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    for reference in HTML_REFERENCE.findall(index):
        if reference.startswith("#"):
            continue
        assert (STATIC_DIR / reference).is_file(), reference
