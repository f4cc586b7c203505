"""The local service as a provider: clear refusals, missing programs, restarts, idempotency, shutdown."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aigen.providers.local import availability
from aigen.providers.local.jobs import Job, JobStatus, JobStore
from aigen.providers.types import ErrorCode, GenerationRequest, Outcome

from tests.integration.providers.local_harness import LocalService, data_url, local_service, picture


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[LocalService]:
    async with local_service(tmp_path / "local") as svc:
        yield svc


async def post_job(service: LocalService, body: dict[str, object]) -> httpx.Response:
    return await service.http.post(service.url + "/v1/jobs", json=body)


# --- refusals name the field to fix -------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"model": "local-hologram", "prompt": "x"}, 400, "unknown_model", "model"),
        ({"prompt": "x"}, 400, "invalid_request", "model"),
        (
            {"model": "local-video", "prompt": "x", "parameters": {"duration": 99}},
            422,
            "invalid_parameter",
            "parameters.duration",
        ),
        (
            {"model": "local-video", "prompt": "x", "parameters": {"motion": "spin"}},
            422,
            "invalid_parameter",
            "parameters.motion",
        ),
        (
            {"model": "local-video", "prompt": "x", "parameters": {"width": 320}},
            422,
            "invalid_parameter",
            "parameters.height",
        ),
        (
            {"model": "local-video", "prompt": "x", "parameters": {"width": 321, "height": 180}},
            422,
            "invalid_parameter",
            "parameters.width",
        ),
        (
            {"model": "local-image", "prompt": "x", "parameters": {"colour": "red"}},
            422,
            "invalid_parameter",
            "parameters.colour",
        ),
        (
            {"model": "local-image", "prompt": "x", "number_of_outputs": 5},
            422,
            "invalid_request",
            "number_of_outputs",
        ),
        ({"model": "local-image", "prompt": "  "}, 422, "invalid_request", "prompt"),
        ({"model": "local-video"}, 422, "invalid_request", "prompt"),
        (
            {"model": "local-image", "prompt": "x", "input_images": [data_url(picture((8, 8), (0, 0, 0)))]},
            422,
            "invalid_input_image",
            "input_images",
        ),
        (
            {"model": "local-video", "input_images": ["ftp://example.com/a.png"]},
            422,
            "invalid_input_image",
            "input_images[0]",
        ),
        (
            {
                "model": "local-video",
                "input_images": [
                    "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nbroken").decode()
                ],
            },
            422,
            "invalid_input_image",
            "input_images[0]",
        ),
        (
            {"model": "local-video", "input_images": [data_url(b"plain text, not a picture", "text/plain")]},
            422,
            "invalid_input_image",
            "input_images[0]",
        ),
    ],
)
async def test_bad_requests_are_refused_with_the_field_named(
    service: LocalService, body: dict[str, object], status: int, code: str, field: str
) -> None:
    response = await post_job(service, body)

    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"].startswith(field + ":")


async def test_a_body_that_is_not_json_is_refused(service: LocalService) -> None:
    response = await service.http.post(service.url + "/v1/jobs", content=b"{nope")
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "body"


async def test_an_image_url_that_cannot_be_downloaded_is_refused(service: LocalService) -> None:
    missing = service.url + "/v1/files/" + "0" * 24 + "-0.png"
    response = await post_job(service, {"model": "local-video", "input_images": [missing]})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "input_images[0]"
    assert "HTTP 404" in response.json()["error"]["message"]


async def test_the_adapter_turns_refusals_into_errors_that_say_what_to_fix(service: LocalService) -> None:
    duration = await service.adapter("local-video").dispatch(
        GenerationRequest("x", parameters={"duration": 0.2})
    )
    broken = data_url(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    image = await service.adapter("local-video").dispatch(GenerationRequest("x", input_images=[broken]))
    unknown = await service.adapter("local-nothing").dispatch(GenerationRequest("x"))

    assert duration.outcome is Outcome.ERROR
    assert duration.error is not None
    assert duration.error.code is ErrorCode.INVALID_REQUEST
    assert "parameters.duration" in duration.error.message
    assert not duration.error.retryable
    assert image.error is not None
    assert image.error.code is ErrorCode.INVALID_INPUT_IMAGE
    assert "input_images[0]" in image.error.message
    assert unknown.error is not None
    assert unknown.error.code is ErrorCode.UNSUPPORTED
    assert "local-nothing" in unknown.error.message


async def test_an_unknown_job_is_not_found(service: LocalService) -> None:
    result = await service.adapter("local-image").check_status("f" * 24)
    assert result.outcome is Outcome.ERROR
    assert result.error is not None
    assert result.error.code is ErrorCode.NOT_FOUND


async def test_only_files_the_service_made_are_served(service: LocalService) -> None:
    for name in ("..%2Fjobs", "job.json", "0" * 24 + "-0.exe", "0" * 24 + "-0.png"):
        response = await service.http.get(f"{service.url}/v1/files/{name}")
        assert response.status_code == 404, name


# --- missing programs: the model is unavailable, the service runs --------------------------------


def test_availability_names_the_missing_programs(tmp_path: Path) -> None:
    assert availability() == {"local-image": None, "local-tts": None, "local-video": None}

    none = availability(search_path=str(tmp_path))
    assert none["local-image"] is None  # Pillow needs no program
    assert none["local-tts"] is not None
    assert "espeak-ng" in none["local-tts"]
    assert none["local-video"] is not None
    assert "ffmpeg not found" in none["local-video"]


async def test_without_programs_the_service_starts_and_refuses_clearly(tmp_path: Path) -> None:
    only_ffmpeg = tmp_path / "bin"
    only_ffmpeg.mkdir()
    (only_ffmpeg / "ffmpeg").symlink_to("/usr/bin/ffmpeg")

    async with local_service(tmp_path / "empty", search_path="") as bare:
        health = (await bare.http.get(bare.url + "/v1/health")).json()
        refused = await post_job(bare, {"model": "local-video", "prompt": "x"})
        via_adapter = await bare.adapter("local-tts").dispatch(GenerationRequest("hello"))
        adapter_health = await bare.adapter("local-video").health()
        image = await bare.run("local-image", "still works", width=64, height=64)

    assert health["models"]["local-image"] == {"available": True, "reason": None}
    assert health["models"]["local-video"]["available"] is False
    assert "ffmpeg" in health["models"]["local-video"]["reason"]
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "model_unavailable"
    assert "ffmpeg not found" in refused.json()["error"]["message"]
    assert via_adapter.error is not None
    assert via_adapter.error.code is ErrorCode.UNSUPPORTED
    assert "espeak-ng" in via_adapter.error.message
    assert not adapter_health.ok
    assert "local-video unavailable" in adapter_health.message
    assert image.result.outcome is Outcome.SUCCESS

    async with local_service(tmp_path / "some", search_path=str(only_ffmpeg)) as partial:
        models = (await partial.http.get(partial.url + "/v1/health")).json()["models"]
        video = await partial.run(
            "local-video", "ffmpeg is enough", duration=1, width=128, height=128, fps=12
        )
        tts_health = await partial.adapter("local-tts").health()

    assert models["local-video"]["available"] is True
    assert models["local-tts"]["available"] is False
    assert "espeak-ng not found" in models["local-tts"]["reason"]
    assert video.result.outcome is Outcome.SUCCESS, video.result.error
    assert not tts_health.ok


async def test_health_reports_every_engine(service: LocalService) -> None:
    result = await service.adapter("local-video").health()
    assert result.ok
    assert "local-image" in result.message
    assert "local-tts" in result.message


# --- idempotency and restarts ------------------------------------------------------------------


async def test_a_repeated_reference_names_the_same_job(service: LocalService) -> None:
    first = await service.run("local-image", "once", reference="task-123", width=64, height=64)
    again = await service.adapter("local-image").dispatch(
        GenerationRequest("once", parameters={"width": 64, "height": 64}, reference="task-123")
    )
    assert again.provider_task_id == first.result.provider_task_id
    assert len(list((service.app.state.runner.store.jobs_dir).iterdir())) == 1


async def test_finished_jobs_and_files_outlive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "local"
    async with local_service(data) as before:
        done = await before.run("local-image", "kept", width=64, height=64)
        png = await before.download(done.result.results[0].url or "")
    assert done.result.provider_task_id is not None

    async with local_service(data) as after:
        again = await after.adapter("local-image").check_status(done.result.provider_task_id)
        assert again.outcome is Outcome.SUCCESS
        assert again.results[0].url is not None
        assert again.results[0].url.startswith(after.url)  # URLs follow the address it now serves on
        assert await after.download(again.results[0].url) == png


async def test_a_job_interrupted_by_a_stop_runs_again_at_the_next_start(tmp_path: Path) -> None:
    data = tmp_path / "local"
    interrupted = Job(
        Job.new_id(),
        "local-image",
        "interrupted",
        1,
        {"width": 64, "height": 64, "style": "aurora", "show_text": True, "seed": 0},
        status=JobStatus.RUNNING,
        progress=0.4,
    )
    JobStore(data).save(interrupted)

    async with local_service(data) as svc:
        adapter = svc.adapter("local-image")
        result = await adapter.check_status(interrupted.id)
        async with asyncio.timeout(30):
            while result.outcome is Outcome.PROCESSING:
                await asyncio.sleep(0.02)
                result = await adapter.check_status(interrupted.id)
    assert result.outcome is Outcome.SUCCESS, result.error


# --- the process: python -m aigen.providers.local ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_the_service_process_serves_and_stops_cleanly(tmp_path: Path, stop_signal: signal.Signals) -> None:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "aigen.providers.local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "data"),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=1)
                break
            except httpx.HTTPError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "the service did not answer"
                time.sleep(0.1)
        assert health.status_code == 200
        assert health.json()["models"]["local-video"]["available"] is True
        process.send_signal(stop_signal)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_stopping_mid_job_kills_ffmpeg_and_keeps_the_job_for_the_next_start(tmp_path: Path) -> None:
    port = _free_port()
    data = tmp_path / "data"
    command = [sys.executable, "-m", "aigen.providers.local", "--port", str(port), "--data-dir", str(data)]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base + "/v1/health", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the service did not answer"
                time.sleep(0.1)
        body = {
            "model": "local-video",
            "prompt": "long",
            "parameters": {"duration": 30, "resolution": "1080p"},
        }
        job_id = httpx.post(base + "/v1/jobs", json=body, timeout=10).json()["id"]
        while not (busy := _children(process.pid)):
            assert time.monotonic() < deadline + 20, "ffmpeg never started"
            time.sleep(0.05)

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    for pid in busy:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    (job,) = JobStore(data).load_all()
    assert (job.id, job.status) == (job_id, JobStatus.QUEUED)
