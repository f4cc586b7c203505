"""Episode exports from real media made with ffmpeg: the animatic (checked with ffprobe and by
looking at its pictures), the OTIO and FCP XML timelines, the HTML and PDF storyboards."""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from pathlib import Path

import grpc
import opentimelineio as otio
import pytest
from aigen.grpcx.status import from_rpc_error
from aigen.v1 import common_pb2, studio_pb2
from PIL import Image

from services.studio.domain import MediaType

pytestmark = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
    reason="exports need ffmpeg and ffprobe on PATH (apt-get install ffmpeg)",
)


async def sh(*argv: str) -> bytes:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out


async def make_media(folder: Path) -> None:
    quiet = ("ffmpeg", "-hide_banner", "-loglevel", "error", "-y")
    await sh(*quiet, "-f", "lavfi", "-i", "color=c=red:s=640x360", "-frames:v", "1", str(folder / "red.png"))
    await sh(
        *quiet, "-f", "lavfi", "-i", "color=c=yellow:s=400x400", "-frames:v", "1", str(folder / "yellow.png")
    )
    for name, colour, seconds in (("blue.mp4", "blue", 1.0), ("green.mp4", "green", 4.0)):
        await sh(
            *quiet, "-f", "lavfi", "-i", f"color=c={colour}:s=320x240:r=25", "-t", str(seconds),
            "-pix_fmt", "yuv420p", str(folder / name),
        )  # fmt: skip
    await sh(*quiet, "-f", "lavfi", "-i", "sine=frequency=440:duration=1", str(folder / "tone.mp3"))


async def probe(path: Path) -> dict:
    out = await sh(
        "ffprobe", "-v", "error", "-show_entries", "format=duration:stream=codec_type,width,height",
        "-of", "json", str(path),
    )  # fmt: skip
    return json.loads(out)


async def colour_at(video: Path, seconds: float, folder: Path) -> str:
    still = folder / f"at-{seconds}.png"
    await sh(
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-ss", str(seconds), "-i", str(video),
        "-frames:v", "1", str(still),
    )  # fmt: skip
    with Image.open(still) as image:
        r, g, b = image.convert("RGB").getpixel((image.width // 2, image.height // 2))
    return max((("red", r), ("green", g), ("blue", b)), key=lambda c: c[1])[0]


@pytest.fixture
async def episode(studio, media_server):
    """Three shots: a still with a tone under it, a short clip (held), a long clip (trimmed)."""
    stub = studio.stub
    folder, base = media_server
    await make_media(folder)
    project = await stub.CreateProject(studio_pb2.CreateProjectRequest(slug="harbour-film", name="Harbour"))
    episode = await stub.CreateEpisode(
        studio_pb2.CreateEpisodeRequest(project_id=project.id, title="Arrival")
    )
    plan = [
        (2.0, "Dock", "A red dawn over the dock", common_pb2.IMAGE, "red.png", "tone.mp3"),
        (1.6, "Boat", "A blue boat drifts in", common_pb2.VIDEO, "blue.mp4", None),
        (2.4, "Field", "Green fields behind the town", common_pb2.VIDEO, "green.mp4", None),
    ]
    shots = []
    for duration, title, description, media, picture, sound in plan:
        shot = await stub.CreateShot(
            studio_pb2.CreateShotRequest(
                episode_id=episode.id, title=title, description=description, duration_seconds=duration
            )
        )
        # A take that is not chosen, so the export has to follow the selection.
        decoy = await stub.CreateFrame(
            studio_pb2.CreateFrameRequest(
                shot_id=shot.id, media_type=common_pb2.IMAGE, url=f"{base}/yellow.png"
            )
        )
        chosen = await stub.CreateFrame(
            studio_pb2.CreateFrameRequest(shot_id=shot.id, media_type=media, url=f"{base}/{picture}")
        )
        await stub.SelectFrame(studio_pb2.SelectFrameRequest(id=chosen.id))
        assert decoy.selected
        if sound:
            await stub.CreateFrame(
                studio_pb2.CreateFrameRequest(
                    shot_id=shot.id, media_type=common_pb2.AUDIO, url=f"{base}/{sound}"
                )
            )
        shots.append(shot)
    return project, episode, shots


async def export(stub, episode_id: str, kind: str, **size) -> studio_pb2.Export:
    return await stub.ExportEpisode(studio_pb2.ExportEpisodeRequest(episode_id=episode_id, kind=kind, **size))


async def test_animatic_holds_each_chosen_picture_for_its_shot_in_order_with_the_sound(
    studio, episode, tmp_path
):
    _project, ep, _ = episode
    made = await export(studio.stub, ep.id, "animatic", width=640, height=360)
    assert made.storage_key == f"studio/harbour-film/{ep.id}/{made.id}.mp4"
    assert made.url == f"http://objects.invalid/{made.storage_key}"
    assert made.content_type == "video/mp4"
    assert made.details["duration_seconds"] == pytest.approx(6.0)
    video = studio.objects / made.storage_key
    assert video.stat().st_size == made.size > 0

    info = await probe(video)
    assert float(info["format"]["duration"]) == pytest.approx(6.0, abs=0.1)
    kinds = sorted(s["codec_type"] for s in info["streams"])
    assert kinds == ["audio", "video"]
    picture = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert (picture["width"], picture["height"]) == (640, 360)
    # Shot 1 red (0-2 s), shot 2 blue, held after its 1 s clip ends (2-3.6 s), shot 3 green.
    assert [await colour_at(video, t, tmp_path) for t in (1.0, 2.4, 3.3, 4.5, 5.8)] == [
        "red",
        "blue",
        "blue",
        "green",
        "green",
    ]
    listed = await studio.stub.ListExports(studio_pb2.ListExportsRequest(episode_id=ep.id))
    assert [e.id for e in listed.exports] == [made.id]


async def test_animatic_without_any_sound_has_no_audio_stream(studio, media_server):
    stub = studio.stub
    folder, base = media_server
    await make_media(folder)
    project = await stub.CreateProject(studio_pb2.CreateProjectRequest(slug="silent", name="Silent"))
    ep = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=project.id))
    shot = await stub.CreateShot(studio_pb2.CreateShotRequest(episode_id=ep.id, duration_seconds=1.2))
    await stub.CreateFrame(
        studio_pb2.CreateFrameRequest(shot_id=shot.id, media_type=common_pb2.IMAGE, url=f"{base}/red.png")
    )
    made = await export(stub, ep.id, "animatic")
    info = await probe(studio.objects / made.storage_key)
    assert [s["codec_type"] for s in info["streams"]] == ["video"]
    assert (info["streams"][0]["width"], info["streams"][0]["height"]) == (1280, 720)
    assert float(info["format"]["duration"]) == pytest.approx(1.2, abs=0.1)


async def test_otio_timeline_has_a_clip_per_shot_in_order_referencing_the_chosen_media(
    studio, episode, media_server
):
    _, ep, shots = episode
    _, base = media_server
    made = await export(studio.stub, ep.id, "otio")
    assert made.storage_key.endswith(".otio")
    timeline = otio.adapters.read_from_file(str(studio.objects / made.storage_key))
    picture = timeline.video_tracks()[0]
    clips = list(picture.find_clips())
    assert [c.name for c in clips] == ["Shot 1: Dock", "Shot 2: Boat", "Shot 3: Field"]
    assert [c.media_reference.target_url for c in clips] == [
        f"{base}/red.png",
        f"{base}/blue.mp4",
        f"{base}/green.mp4",
    ]
    assert [c.source_range.duration.value for c in clips] == [50, 40, 60]
    assert [c.metadata["aigen"]["shot_id"] for c in clips] == [s.id for s in shots]
    assert timeline.duration().to_seconds() == pytest.approx(6.0)
    sound = timeline.audio_tracks()[0]
    # The one-second tone (as long as the encoder made it) under the two-second first shot, then
    # silence to the end.
    assert [type(item).__name__ for item in sound] == ["Clip", "Gap"]
    assert sound[0].source_range.duration.to_seconds() == pytest.approx(1.0, abs=0.1)
    assert sound.duration().to_seconds() == pytest.approx(6.0)
    assert sound[0].media_reference.target_url == f"{base}/tone.mp3"


async def test_fcp_xml_carries_the_same_cut(studio, episode):
    if "fcp_xml" not in otio.adapters.available_adapter_names():
        pytest.fail("the fcp_xml adapter (otio-fcp-adapter) is not installed")
    _, ep, _ = episode
    made = await export(studio.stub, ep.id, "fcpxml")
    path = studio.objects / made.storage_key
    assert path.suffix == ".xml"
    assert path.read_text().lstrip().startswith("<?xml")
    timeline = otio.adapters.read_from_file(str(path), adapter_name="fcp_xml")
    clips = list(timeline.video_tracks()[0].find_clips())
    assert [c.name for c in clips] == ["Shot 1: Dock", "Shot 2: Boat", "Shot 3: Field"]


async def test_storyboards_show_every_shot_with_its_picture_description_and_duration(studio, episode):
    _, ep, _ = episode
    page = await export(studio.stub, ep.id, "storyboard_html")
    html = (studio.objects / page.storage_key).read_text()
    assert page.content_type.startswith("text/html")
    for text in (
        "Shot 1: Dock",
        "A red dawn over the dock",
        "2 s",
        "Shot 2: Boat",
        "1.6 s",
        "Shot 3: Field",
        "2.4 s",
    ):
        assert text in html
    assert html.count('src="data:image/jpeg;base64,') == 3
    assert html.index("Shot 1") < html.index("Shot 2") < html.index("Shot 3")

    sheet = await export(studio.stub, ep.id, "storyboard_pdf")
    pdf = (studio.objects / sheet.storage_key).read_bytes()
    assert pdf.startswith(b"%PDF")
    assert pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page ") >= 1
    assert sheet.size == len(pdf)
    listed = await studio.stub.ListExports(studio_pb2.ListExportsRequest(episode_id=ep.id))
    assert {e.kind for e in listed.exports} == {"storyboard_html", "storyboard_pdf"}


async def test_stored_media_is_read_from_storage_by_its_key(studio, media_server):
    """A frame whose URL no longer answers still exports: its bytes come from storage."""
    stub = studio.stub
    folder, base = media_server
    await make_media(folder)
    project = await stub.CreateProject(studio_pb2.CreateProjectRequest(slug="stored", name="Stored"))
    ep = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=project.id))
    shot = await stub.CreateShot(studio_pb2.CreateShotRequest(episode_id=ep.id, duration_seconds=1.0))
    key = f"ai-generation/{uuid.uuid4().hex}.png"
    (studio.objects / "ai-generation").mkdir(exist_ok=True)
    shutil.copyfile(folder / "red.png", studio.objects / key)
    async with studio.repo.transaction() as conn:
        await studio.repo.add_frames(
            conn, uuid.UUID(shot.id), [(MediaType.IMAGE, "http://127.0.0.1:9/expired", key)], "task-1"
        )
    made = await export(stub, ep.id, "animatic", width=320, height=180)
    info = await probe(studio.objects / made.storage_key)
    assert float(info["format"]["duration"]) == pytest.approx(1.0, abs=0.1)
    # Pointed at other media, the frame no longer claims the stored object.
    (frame,) = (await stub.ListFrames(studio_pb2.ListFramesRequest(shot_id=shot.id))).frames
    assert frame.storage_key == key
    moved = await stub.UpdateFrame(studio_pb2.UpdateFrameRequest(id=frame.id, url=f"{base}/yellow.png"))
    assert (moved.url, moved.storage_key) == (f"{base}/yellow.png", "")


async def test_export_refuses_an_episode_whose_shots_lack_a_chosen_picture_naming_them(studio, media_server):
    stub = studio.stub
    _, base = media_server
    project = await stub.CreateProject(studio_pb2.CreateProjectRequest(slug="unfinished", name="Unfinished"))
    ep = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=project.id))
    done = await stub.CreateShot(studio_pb2.CreateShotRequest(episode_id=ep.id))
    await stub.CreateFrame(
        studio_pb2.CreateFrameRequest(shot_id=done.id, media_type=common_pb2.IMAGE, url=f"{base}/red.png")
    )
    sound_only = await stub.CreateShot(studio_pb2.CreateShotRequest(episode_id=ep.id))
    await stub.CreateFrame(
        studio_pb2.CreateFrameRequest(
            shot_id=sound_only.id, media_type=common_pb2.AUDIO, url=f"{base}/tone.mp3"
        )
    )
    empty = await stub.CreateShot(studio_pb2.CreateShotRequest(episode_id=ep.id))
    for kind in ("animatic", "otio", "storyboard_pdf"):
        with pytest.raises(grpc.RpcError) as info:
            await export(stub, ep.id, kind)
        assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "2, 3" in info.value.details()
        assert [v.field for v in from_rpc_error(info.value).violations] == [
            f"shots/{sound_only.id}",
            f"shots/{empty.id}",
        ]
    assert (await stub.ListExports(studio_pb2.ListExportsRequest(episode_id=ep.id))).exports == []

    nothing = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=project.id))
    with pytest.raises(grpc.RpcError) as info:
        await export(stub, nothing.id, "animatic")
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as info:
        await export(stub, ep.id, "gif", width=333)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in from_rpc_error(info.value).violations] == ["kind", "width"]


async def test_media_on_a_private_address_is_refused_not_fetched(studio, media_server):
    stub = studio.stub
    project = await stub.CreateProject(studio_pb2.CreateProjectRequest(slug="guarded", name="Guarded"))
    ep = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=project.id))
    shot = await stub.CreateShot(studio_pb2.CreateShotRequest(episode_id=ep.id, duration_seconds=1.0))
    # A loopback address that is not on the allow-list: the guard refuses before connecting.
    frame = await stub.CreateFrame(
        studio_pb2.CreateFrameRequest(
            shot_id=shot.id, media_type=common_pb2.IMAGE, url="http://127.0.0.2:9/x.png"
        )
    )
    with pytest.raises(grpc.RpcError) as info:
        await export(stub, ep.id, "animatic")
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "loopback" in info.value.details()
    assert [v.field for v in from_rpc_error(info.value).violations] == [f"frames/{frame.id}"]


async def test_deleting_the_episode_deletes_its_export_files(studio, episode):
    _, ep, _ = episode
    made = await export(studio.stub, ep.id, "otio")
    assert (studio.objects / made.storage_key).is_file()
    await studio.stub.DeleteEpisode(studio_pb2.DeleteEpisodeRequest(id=ep.id))
    assert not (studio.objects / made.storage_key).exists()
    with pytest.raises(grpc.RpcError) as info:
        await studio.stub.ListExports(studio_pb2.ListExportsRequest(episode_id=ep.id))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
