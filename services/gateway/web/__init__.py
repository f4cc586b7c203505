"""The admin web UI: static HTML, CSS and ES modules served at `/ui/`, with `/` redirecting there.

Nothing is built at run time: the browser loads the files as they are in `static/`. Everything
the pages show comes from the admin API with the admin token the page asks for once.
"""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"
PREFIX = "/ui"

# Fixed here rather than guessed from the host's mime.types: a module script served with any
# other type is refused by the browser, and hosts disagree about `.js`.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}

# The pages load only their own files; results may live on other hosts (provider URLs, public
# buckets), so pictures and media may come from anywhere over http(s).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob: http: https:",
        "media-src 'self' data: blob: http: https:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # Revalidate every time (ETag / Last-Modified make that cheap): a new release shows at once.
    "Cache-Control": "no-cache",
}


class UiFiles(StaticFiles):
    """StaticFiles with fixed content types and the UI's security headers."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        media_type = MEDIA_TYPES.get(Path(full_path).suffix)
        if media_type is not None and "content-type" in response.headers:
            response.headers["content-type"] = media_type
        response.headers.update(HEADERS)
        return response


async def _to_ui(request: Request) -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=307)


def mount(app: FastAPI) -> None:
    """Serve the UI at /ui/ and send / there."""
    app.mount(PREFIX, UiFiles(directory=STATIC_DIR, html=True), name="ui")
    app.add_route("/", _to_ui, methods=["GET", "HEAD"], include_in_schema=False)
