"""The whole Studio flow through gRPC with the real services and the local provider.

project → two characters → episode → three shots → generation per shot (and a voice line) →
frames appear, one chosen per shot → exports: an animatic whose length is the sum of the shots'
durations with a sound track, and an OTIO timeline with the three clips in order → deleting a
task keeps its frames (unlinked) → deleting a shot removes its frames.

Runs every service in this process (tests/support/stack.py) against real PostgreSQL and NATS,
with the local provider served on the loopback interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import opentimelineio as otio
import psycopg
import pytest
from aigen.config import Settings
from aigen.devtools.servers import drop_streams
from google.protobuf.struct_pb2 import Struct

NEEDED_MODULES = {
    "services.catalog.server": "the catalog service (services/catalog)",
    "services.dispatcher.server": "the dispatcher (services/dispatcher)",
    "services.poller.server": "the poller (services/poller)",
    "services.storage.server": "the storage service (services/storage)",
    "services.studio.server": "the studio service (services/studio)",
    "aigen.v1.storage_pb2_grpc": "the StorageService protobuf code (protos/aigen/v1/storage.proto)",
    "aigen.providers.local.service": "the local provider (aigen.providers.local)",
    "tests.support.stack": "the in-process service stack (tests/support/stack.py)",
}
NEEDED_PROGRAMS = {
    "ffmpeg": "ffmpeg (local video, animatic)",
    "ffprobe": "ffprobe",
    "espeak-ng": "espeak-ng (local speech)",
}


def _missing() -> list[str]:
    missing = []
    for module, what in NEEDED_MODULES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(what)
    missing.extend(what for program, what in NEEDED_PROGRAMS.items() if shutil.which(program) is None)
    return missing


MISSING = _missing()
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING), reason="the full Studio flow needs " + "; ".join(MISSING)),
]

SECRET = "studio-flow-test-secret-key-0123456789"


@contextlib.asynccontextmanager
async def system(
    pg_url: str, nats_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator:
    from aigen.providers.local.service import create_app as create_local_provider
    from aigen.simulator.serving import serve_asgi

    from tests.support.stack import running_stack

    schema = f"s_{uuid.uuid4().hex[:12]}"
    namespace = f"s{uuid.uuid4().hex[:12]}"
    try:
        async with serve_asgi(create_local_provider(tmp_path / "local")) as local_url:
            monkeypatch.setenv("AIGEN_PROVIDER_LOCAL_ENDPOINT", local_url)
            monkeypatch.setenv("AIGEN_NETGUARD_ALLOW", "127.0.0.1")
            monkeypatch.setenv("AIGEN_STORAGE_DIR", str(tmp_path / "objects"))
            monkeypatch.setenv("AIGEN_POLL_INTERVAL_S", "0.2")
            settings = Settings(
                database_url=pg_url,
                db_schema=schema,
                nats_url=nats_url,
                nats_namespace=namespace,
                secret_key=SECRET,
                home=tmp_path,
                log_format="text",
            )
            async with running_stack(settings) as stack:
                yield stack
    finally:
        async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await drop_streams(nats_url, namespace)


async def until(check, what: str, timeout: float = 90.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.2)


async def read_object(storage, key: str, target: Path) -> Path:
    from aigen.v1 import storage_pb2

    with target.open("wb") as out:
        async for chunk in storage.GetObject(storage_pb2.GetObjectRequest(key=key)):
            out.write(chunk.data)
    return target


async def ffprobe(path: Path) -> dict:
    process = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type,width,height",
        "-of", "json", str(path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return json.loads(out)


async def test_a_project_from_characters_to_exported_animatic_and_timeline(
    pg_url, nats_url, monkeypatch, tmp_path
):
    from aigen.v1 import (
        common_pb2,
        generation_pb2,
        generation_pb2_grpc,
        storage_pb2_grpc,
        studio_pb2,
        studio_pb2_grpc,
    )

    async with system(pg_url, nats_url, monkeypatch, tmp_path) as stack:
        studio = studio_pb2_grpc.StudioServiceStub(stack.channel("studio"))
        tasks = generation_pb2_grpc.GenerationServiceStub(stack.channel("dispatcher"))
        storage = storage_pb2_grpc.StorageServiceStub(stack.channel("storage"))

        project = await studio.CreateProject(
            studio_pb2.CreateProjectRequest(
                slug="lighthouse",
                name="The Lighthouse",
                default_models={"IMAGE": "local-image", "AUDIO": "local-tts"},
                style_prompt="Flat colours, strong silhouettes",
            )
        )
        mara = await studio.CreateCharacter(
            studio_pb2.CreateCharacterRequest(
                project_id=project.id, name="Mara", description="keeper, yellow coat"
            )
        )
        oskar = await studio.CreateCharacter(
            studio_pb2.CreateCharacterRequest(project_id=project.id, name="Oskar", description="her brother")
        )
        cliff = await studio.CreateSetting(
            studio_pb2.CreateSettingRequest(project_id=project.id, location="Cliff top", time_of_day="dusk")
        )
        episode = await studio.CreateEpisode(
            studio_pb2.CreateEpisodeRequest(project_id=project.id, title="Signal")
        )
        durations = (1.5, 2.0, 2.5)
        shots = []
        for i, (seconds, cast) in enumerate(
            zip(durations, ((mara,), (oskar,), (mara, oskar)), strict=True), 1
        ):
            shot = await studio.CreateShot(
                studio_pb2.CreateShotRequest(
                    episode_id=episode.id,
                    title=f"Beat {i}",
                    description=f"The lamp, moment {i}",
                    duration_seconds=seconds,
                    setting_id=cliff.id,
                    scene_descriptions=[
                        studio_pb2.SceneDescription(character_name="Mara", description="Light it.")
                    ],
                )
            )
            for character in cast:
                await studio.LinkCharacter(
                    studio_pb2.LinkCharacterRequest(shot_id=shot.id, character_id=character.id)
                )
            shots.append(shot)

        small = Struct()
        small.update({"width": 640, "height": 360})
        generated = []
        for shot in shots:
            generated.append(
                await studio.GenerateForShot(
                    studio_pb2.GenerateForShotRequest(
                        shot_id=shot.id, output_type=common_pb2.IMAGE, parameters=small
                    )
                )
            )
        voice = await studio.GenerateForShot(
            studio_pb2.GenerateForShotRequest(shot_id=shots[0].id, output_type=common_pb2.AUDIO)
        )
        assert all(t.shot_id == s.id for t, s in zip(generated, shots, strict=True))
        assert voice.prompt == "Light it."

        async def every_shot_has_its_takes():
            overview = await studio.EpisodeOverview(studio_pb2.EpisodeOverviewRequest(episode_id=episode.id))
            chosen = [s.selected_frame.id for s in overview.shots]
            return overview if all(chosen) and overview.shots[0].selected_audio.id else None

        overview = await until(
            every_shot_has_its_takes, "a chosen picture in every shot and a voice in the first"
        )
        assert [s.shot.id for s in overview.shots] == [s.id for s in shots]
        assert [s.selected_frame.task_id for s in overview.shots] == [t.id for t in generated]
        assert overview.shots[0].selected_audio.task_id == voice.id
        assert overview.total_duration_seconds == pytest.approx(sum(durations))
        for shot, task in zip(shots, generated, strict=True):
            history = await studio.ShotTaskHistory(studio_pb2.ShotTaskHistoryRequest(shot_id=shot.id))
            assert task.id in [t.id for t in history.tasks]
        cost = await studio.GetCost(studio_pb2.GetCostRequest(project_id=project.id))
        assert cost.task_count == 4

        animatic = await studio.ExportEpisode(
            studio_pb2.ExportEpisodeRequest(episode_id=episode.id, kind="animatic", width=640, height=360),
            timeout=300,
        )
        assert animatic.storage_key == f"studio/lighthouse/{episode.id}/{animatic.id}.mp4"
        video = await read_object(storage, animatic.storage_key, tmp_path / "animatic.mp4")
        info = await ffprobe(video)
        assert float(info["format"]["duration"]) == pytest.approx(sum(durations), abs=0.1)
        assert sorted(s["codec_type"] for s in info["streams"]) == ["audio", "video"]

        timeline_export = await studio.ExportEpisode(
            studio_pb2.ExportEpisodeRequest(episode_id=episode.id, kind="otio"), timeout=120
        )
        timeline_file = await read_object(storage, timeline_export.storage_key, tmp_path / "episode.otio")
        timeline = otio.adapters.read_from_file(str(timeline_file))
        clips = list(timeline.video_tracks()[0].find_clips())
        assert [c.name for c in clips] == ["Shot 1: Beat 1", "Shot 2: Beat 2", "Shot 3: Beat 3"]
        assert [c.media_reference.target_url for c in clips] == [s.selected_frame.url for s in overview.shots]
        listed = await studio.ListExports(studio_pb2.ListExportsRequest(episode_id=episode.id))
        assert {e.id for e in listed.exports} == {animatic.id, timeline_export.id}

        # Deleting a task: its frames keep their media, their task link is cleared.
        doomed = generated[1]
        await tasks.DeleteTask(generation_pb2.DeleteTaskRequest(id=doomed.id))

        async def unlinked():
            frames = (await studio.ListFrames(studio_pb2.ListFramesRequest(shot_id=shots[1].id))).frames
            return frames if frames and all(f.task_id == "" for f in frames) else None

        frames = await until(unlinked, "the deleted task's frames unlinked")
        assert frames[0].url == overview.shots[1].selected_frame.url
        assert frames[0].selected

        # Deleting a shot removes its frames.
        await studio.DeleteShot(studio_pb2.DeleteShotRequest(id=shots[2].id))
        with pytest.raises(grpc.RpcError) as gone:
            await studio.ListFrames(studio_pb2.ListFramesRequest(shot_id=shots[2].id))
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.RpcError) as refused:
            await studio.GenerateForShot(
                studio_pb2.GenerateForShotRequest(shot_id=shots[2].id, output_type=common_pb2.IMAGE)
            )
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        remaining = await studio.EpisodeOverview(studio_pb2.EpisodeOverviewRequest(episode_id=episode.id))
        assert [s.shot.id for s in remaining.shots] == [shots[0].id, shots[1].id]
