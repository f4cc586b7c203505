"""local-tts end to end: espeak-ng speech encoded by ffmpeg, as audio that ffprobe reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aigen.providers.types import Outcome, OutputType

from tests.integration.providers.local_harness import LocalService, ffprobe, local_service

SHORT = "Hello from the local provider."
LONG = " ".join([SHORT, "It speaks without any account, offline, on this machine."] * 3)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[LocalService]:
    async with local_service(tmp_path / "local") as svc:
        yield svc


async def speak(
    service: LocalService, tmp_path: Path, text: str, **params: Any
) -> tuple[dict[str, Any], float]:
    done = await service.run("local-tts", text, **params)
    assert done.result.outcome is Outcome.SUCCESS, done.result.error
    (item,) = done.result.results
    assert item.type is OutputType.AUDIO
    assert item.url is not None
    target = tmp_path / item.url.rsplit("/", 1)[1]
    await service.download(item.url, target)
    probe = ffprobe(target)
    (stream,) = probe["streams"]
    assert item.extra["duration_s"] > 0
    return stream | {"content_type": item.content_type}, float(probe["format"]["duration"])


@pytest.mark.parametrize(
    ("output_format", "codec", "content_type"),
    [("mp3", "mp3", "audio/mpeg"), ("wav", "pcm_s16le", "audio/wav")],
)
async def test_speech_is_real_audio_that_grows_with_the_text(
    service: LocalService, tmp_path: Path, output_format: str, codec: str, content_type: str
) -> None:
    short, short_s = await speak(service, tmp_path, SHORT, output_format=output_format)
    long, long_s = await speak(service, tmp_path, LONG, output_format=output_format)

    assert short["codec_name"] == long["codec_name"] == codec
    assert short["content_type"] == content_type
    assert 0.5 < short_s < long_s
    assert long_s > 3 * short_s


async def test_voice_speed_and_language_are_applied(service: LocalService, tmp_path: Path) -> None:
    _, normal = await speak(service, tmp_path, SHORT, speed=175)
    _, fast = await speak(service, tmp_path, SHORT, speed=350, variant="female", pitch=70)
    _, chinese = await speak(service, tmp_path, "你好 欢迎使用本地语音", voice="cmn")

    assert fast < normal * 0.75  # twice the words per minute is clearly shorter
    assert chinese > 0.5
