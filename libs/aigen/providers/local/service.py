"""The local provider's HTTP API: it behaves like a commercial provider, only on this machine.

    GET  /v1/health          which models can run here, and why not
    POST /v1/jobs            {model, prompt, input_images, number_of_outputs, parameters, reference}
                             → 201 {id, status} (200 with the existing job for a known reference)
    GET  /v1/jobs/{id}       {id, model, status, progress, outputs: [{url, content_type, …}], error}
    GET  /v1/files/{name}    a finished output

Refusals are JSON `{"error": {"code", "message", "field"}}` with a 4xx status; `field` names
what to fix (`parameters.duration`, `input_images[0]`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from aigen.providers.images import InputImageError, fetch_image_bytes, parse_input_image
from aigen.providers.local.engines import CONTENT_TYPES
from aigen.providers.local.jobs import JOB_ID_RE, Job, JobRunner
from aigen.providers.local.models import MODELS, LocalModel, checked_parameters
from aigen.providers.local.params import ParameterError
from aigen.providers.local.tools import Toolbox

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGE_PIXELS = 50_000_000  # well past 8K; beyond it decoding alone would exhaust memory
DOWNLOAD_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
FILE_NAME_RE = re.compile(r"^[a-z0-9]{16,40}-\d+\.(png|mp4|mp3|wav)$")
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}


class Refusal(Exception):
    """A request the service will not take: becomes a 4xx JSON error."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field

    def response(self) -> JSONResponse:
        body = {"error": {"code": self.code, "message": self.message, "field": self.field}}
        return JSONResponse(body, status_code=self.status)


def default_concurrency() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# --- reading a job request ----------------------------------------------------------------------


def _model(body: dict[str, Any], tools: Toolbox) -> LocalModel:
    slug = body.get("model")
    if not isinstance(slug, str) or not slug:
        raise Refusal(400, "invalid_request", "model: required (one of " + ", ".join(MODELS) + ")", "model")
    model = MODELS.get(slug)
    if model is None:
        raise Refusal(
            400, "unknown_model", f"model: unknown model {slug!r} (known: {', '.join(MODELS)})", "model"
        )
    reason = tools.unavailable_reason(slug)
    if reason is not None:
        raise Refusal(409, "model_unavailable", f"model: {slug} is unavailable here: {reason}", "model")
    return model


def _prompt(body: dict[str, Any], model: LocalModel, images: int) -> str:
    prompt = body.get("prompt", "")
    if prompt is None:
        prompt = ""
    if not isinstance(prompt, str):
        raise Refusal(422, "invalid_request", "prompt: must be text", "prompt")
    prompt = prompt.strip()
    if len(prompt) > model.max_prompt_chars:
        raise Refusal(
            422, "invalid_request", f"prompt: longer than {model.max_prompt_chars} characters", "prompt"
        )
    if not prompt and (model.prompt_required or images == 0):
        needed = "required" if model.prompt_required else "required when no input image is given"
        raise Refusal(422, "invalid_request", f"prompt: {needed}", "prompt")
    return prompt


def _outputs(body: dict[str, Any], model: LocalModel) -> int:
    count = body.get("number_of_outputs", 1)
    if count is None:
        count = 1
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= model.max_outputs:
        raise Refusal(
            422,
            "invalid_request",
            f"number_of_outputs: must be a whole number from 1 to {model.max_outputs} (got {count!r})",
            "number_of_outputs",
        )
    return count


def _image_list(body: dict[str, Any], model: LocalModel) -> list[str]:
    images = body.get("input_images") or []
    if not isinstance(images, list) or not all(isinstance(i, str) for i in images):
        raise Refusal(422, "invalid_request", "input_images: must be a list of URLs", "input_images")
    if len(images) > model.max_input_images:
        limit = "no input images" if model.max_input_images == 0 else f"at most {model.max_input_images}"
        raise Refusal(
            422,
            "invalid_input_image",
            f"input_images: {model.slug} takes {limit} (got {len(images)})",
            "input_images",
        )
    return images


def _checked_image(index: int, data: bytes) -> None:
    """Decode fully: a right header over a broken body must be refused now, not mid-render."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise InputImageError(index, f"{image.width}x{image.height} is more pixels than accepted")
            image.load()
    except InputImageError:
        raise
    except Exception as exc:  # Pillow raises many types for broken data
        raise InputImageError(index, f"cannot be decoded as an image ({type(exc).__name__})") from None


def _write_inputs(folder: Path, images: list[tuple[bytes, str]]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index, (data, mime) in enumerate(images):
        name = f"input-{index}.{EXTENSIONS.get(mime, 'bin')}"
        (folder / name).write_bytes(data)
        names.append(name)
    return names


async def read_job(request: Request, tools: Toolbox) -> tuple[Job, list[str]]:
    """The job a request asks for (not yet holding its images) and its input image URLs."""
    try:
        body = await request.json()
    except ValueError:
        raise Refusal(400, "invalid_request", "body: must be a JSON object", "body") from None
    if not isinstance(body, dict):
        raise Refusal(400, "invalid_request", "body: must be a JSON object", "body")
    model = _model(body, tools)
    urls = _image_list(body, model)
    prompt = _prompt(body, model, len(urls))
    count = _outputs(body, model)
    raw = body.get("parameters") or {}
    if not isinstance(raw, dict):
        raise Refusal(422, "invalid_parameter", "parameters: must be an object", "parameters")
    try:
        parameters = checked_parameters(model, raw)
    except ParameterError as exc:
        raise Refusal(422, "invalid_parameter", str(exc), exc.field) from None
    reference = body.get("reference") or request.headers.get("idempotency-key") or None
    if reference is not None and not isinstance(reference, str):
        raise Refusal(422, "invalid_request", "reference: must be text", "reference")
    return Job(Job.new_id(), model.slug, prompt, count, parameters, reference=reference), urls


async def load_images(urls: list[str]) -> list[tuple[bytes, str]]:
    """Bytes and type of each input image: data URLs decoded, http(s) URLs downloaded, all checked."""
    try:
        parsed = [parse_input_image(i, url, max_bytes=MAX_IMAGE_BYTES) for i, url in enumerate(urls)]
        loaded = []
        async with httpx.AsyncClient(
            timeout=DOWNLOAD_TIMEOUT, follow_redirects=True, max_redirects=3
        ) as http:
            for image in parsed:
                data, mime = await fetch_image_bytes(http, image, max_bytes=MAX_IMAGE_BYTES)
                await asyncio.to_thread(_checked_image, image.index, data)
                loaded.append((data, mime))
    except InputImageError as exc:
        raise Refusal(422, "invalid_input_image", str(exc), f"input_images[{exc.index}]") from None
    return loaded


# --- views --------------------------------------------------------------------------------------


def job_view(job: Job, request: Request) -> dict[str, Any]:
    return {
        "id": job.id,
        "model": job.model,
        "status": job.status.value,
        "progress": round(job.progress, 4),
        "outputs": [
            {
                "url": str(request.url_for("file", filename=output.name)),
                "content_type": output.content_type,
                "name": output.name,
                **output.extra,
            }
            for output in job.outputs
        ],
        "error": job.error,
        "reference": job.reference,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
    }


def create_app(
    data_dir: Path,
    *,
    search_path: str | None = None,
    concurrency: int | None = None,
    job_timeout: float = 600.0,
    retention: float = 7 * 24 * 3600.0,
) -> Starlette:
    """The local provider as an ASGI app; `search_path` replaces PATH when finding programs."""
    tools = Toolbox.find(search_path)
    runner = JobRunner(
        data_dir,
        tools,
        concurrency=concurrency or default_concurrency(),
        job_timeout=job_timeout,
        retention=retention,
    )

    async def health(request: Request) -> Response:
        runner.start()
        models = {
            slug: {"available": reason is None, "reason": reason}
            for slug, reason in tools.availability().items()
        }
        return JSONResponse({"status": "ok", "models": models, "jobs": runner.counts()})

    async def create_job(request: Request) -> Response:
        runner.start()
        try:
            job, urls = await read_job(request, tools)
            if job.reference and (existing := runner.by_reference(job.reference)) is not None:
                return JSONResponse(job_view(existing, request), status_code=200)
            # Downloads last: nothing is fetched for a request refused anyway, or already made.
            images = await load_images(urls)
        except Refusal as refusal:
            return refusal.response()
        job.inputs = await asyncio.to_thread(_write_inputs, runner.store.job_dir(job.id), images)
        accepted = await runner.submit(job)
        if accepted is not job:  # the same reference arrived twice at once; the first one won
            await asyncio.to_thread(runner.store.remove, job)
            return JSONResponse(job_view(accepted, request), status_code=200)
        return JSONResponse(job_view(job, request), status_code=201)

    async def get_job(request: Request) -> Response:
        runner.start()
        job_id = request.path_params["job_id"]
        job = runner.get(job_id) if JOB_ID_RE.match(job_id) else None
        if job is None:
            return Refusal(404, "not_found", f"no job {job_id!r}", "id").response()
        return JSONResponse(job_view(job, request))

    async def get_file(request: Request) -> Response:
        name = request.path_params["filename"]
        # The pattern admits only names this service makes: no path can escape the folder.
        if not FILE_NAME_RE.match(name) or not await asyncio.to_thread((runner.files_dir() / name).is_file):
            return Refusal(404, "not_found", f"no file {name!r}", "filename").response()
        return FileResponse(runner.files_dir() / name, media_type=CONTENT_TYPES[name.rsplit(".", 1)[1]])

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        runner.start()
        try:
            yield
        finally:
            await runner.close()

    # Eight input images as data URLs, base64 inflated, with room for the rest of the body.
    max_body = 8 * MAX_IMAGE_BYTES * 4 // 3 + 1024 * 1024
    app = Starlette(
        routes=[
            Route("/v1/health", health, methods=["GET"]),
            Route("/v1/jobs", create_job, methods=["POST"], max_body_size=max_body),
            Route("/v1/jobs/{job_id}", get_job, methods=["GET"]),
            Route("/v1/files/{filename}", get_file, methods=["GET"], name="file"),
        ],
        lifespan=lifespan,
    )
    app.state.runner = runner
    app.state.tools = tools
    return app
