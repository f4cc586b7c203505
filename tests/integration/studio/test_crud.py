"""StudioService over gRPC on real PostgreSQL: the entities, their rules, and every bad input."""

from __future__ import annotations

import uuid

import grpc
import pytest
from aigen.grpcx.status import from_rpc_error
from aigen.v1 import common_pb2, studio_pb2


async def failing(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        await call(request)
    return info.value


def violations(error: grpc.RpcError) -> list[str]:
    domain = from_rpc_error(error)
    return [v.field for v in getattr(domain, "violations", ())]


async def new_project(stub, slug: str | None = None, **fields) -> studio_pb2.Project:
    return await stub.CreateProject(
        studio_pb2.CreateProjectRequest(
            slug=slug or f"p-{uuid.uuid4().hex[:8]}", name="Night Harbour", **fields
        )
    )


async def test_projects_episodes_and_shots_round_trip(studio):
    stub = studio.stub
    project = await new_project(
        stub, "night-harbour", default_models={"IMAGE": "still-model"}, style_prompt="Painterly"
    )
    assert project.slug == "night-harbour"
    assert project.default_models == {"IMAGE": "still-model"}
    assert (await stub.GetProject(studio_pb2.GetProjectRequest(id="night-harbour"))).id == project.id
    assert (await stub.GetProject(studio_pb2.GetProjectRequest(id=project.id))).slug == "night-harbour"

    updated = await stub.UpdateProject(
        studio_pb2.UpdateProjectRequest(
            id=project.id, name="Night Harbour II", default_models={"VIDEO": "clip-model"}
        )
    )
    assert updated.name == "Night Harbour II"
    assert updated.style_prompt == "Painterly"
    assert updated.default_models == {"IMAGE": "still-model", "VIDEO": "clip-model"}
    cleared = await stub.UpdateProject(
        studio_pb2.UpdateProjectRequest(id=project.id, default_models={"IMAGE": ""}, style_prompt="")
    )
    assert cleared.default_models == {"VIDEO": "clip-model"}
    assert cleared.style_prompt == ""

    first = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=project.id, title="Arrival"))
    second = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=project.id, title="Storm"))
    fifth = await stub.CreateEpisode(
        studio_pb2.CreateEpisodeRequest(project_id=project.id, number=5, script="INT.")
    )
    after = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=project.id))
    assert [first.number, second.number, fifth.number, after.number] == [1, 2, 5, 6]
    listed = await stub.ListEpisodes(studio_pb2.ListEpisodesRequest(project_id=project.id))
    assert [e.number for e in listed.episodes] == [1, 2, 5, 6]
    renumbered = await stub.UpdateEpisode(
        studio_pb2.UpdateEpisodeRequest(id=second.id, number=3, synopsis="Rain")
    )
    assert renumbered.number == 3
    assert renumbered.title == "Storm"
    assert renumbered.synopsis == "Rain"

    shots = [
        await stub.CreateShot(
            studio_pb2.CreateShotRequest(
                episode_id=first.id,
                title=f"Shot {i}",
                duration_seconds=1.5 * i,
                scene_descriptions=[
                    studio_pb2.SceneDescription(character_name="Mara", description=f"looks {i}")
                ],
            )
        )
        for i in (1, 2, 3)
    ]
    assert [s.shot_number for s in shots] == [1, 2, 3]
    assert [s.order for s in shots] == [1, 2, 3]
    changed = await stub.UpdateShot(
        studio_pb2.UpdateShotRequest(
            id=shots[1].id,
            camera="dolly in",
            scene_descriptions=[
                studio_pb2.SceneDescription(character_name="mara", description="turns"),
                studio_pb2.SceneDescription(character_name="Oskar", description="waves"),
            ],
        )
    )
    assert changed.camera == "dolly in"
    assert changed.title == "Shot 2"
    assert changed.duration_seconds == 3.0
    assert [(d.character_name, d.description) for d in changed.scene_descriptions] == [
        ("mara", "turns"),
        ("Oskar", "waves"),
    ]
    replaced = await stub.UpdateShot(
        studio_pb2.UpdateShotRequest(id=shots[1].id, replace_scene_descriptions=True)
    )
    assert list(replaced.scene_descriptions) == []

    project_now = await stub.GetProject(studio_pb2.GetProjectRequest(id=project.id))
    episode_now = await stub.GetEpisode(studio_pb2.GetEpisodeRequest(id=first.id))
    assert project_now.episode_count == 4
    assert episode_now.shot_count == 3
    assert project.id in [p.id for p in (await stub.ListProjects(studio_pb2.ListProjectsRequest())).projects]


async def test_reorder_shots_sets_the_order_the_episode_lists(studio):
    stub = studio.stub
    project = await new_project(stub)
    episode = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=project.id))
    a, b, c = [
        await stub.CreateShot(studio_pb2.CreateShotRequest(episode_id=episode.id, title=t)) for t in "abc"
    ]
    reordered = await stub.ReorderShots(
        studio_pb2.ReorderShotsRequest(episode_id=episode.id, shot_ids=[c.id, a.id, b.id])
    )
    assert [s.title for s in reordered.shots] == ["c", "a", "b"]
    assert [s.order for s in reordered.shots] == [1, 2, 3]
    listed = await stub.ListShots(studio_pb2.ListShotsRequest(episode_id=episode.id))
    assert [s.id for s in listed.shots] == [c.id, a.id, b.id]
    assert [s.shot_number for s in listed.shots] == [3, 1, 2]  # numbers are labels; order is order

    error = await failing(
        stub.ReorderShots, studio_pb2.ReorderShotsRequest(episode_id=episode.id, shot_ids=[c.id, a.id])
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == ["shot_ids"]


async def test_characters_link_in_order_and_settings_belong_to_the_project(studio):
    stub = studio.stub
    project = await new_project(stub)
    episode = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=project.id))
    harbour = await stub.CreateSetting(
        studio_pb2.CreateSettingRequest(
            project_id=project.id, location="Harbour", time_of_day="night", mood="tense"
        )
    )
    shot = await stub.CreateShot(studio_pb2.CreateShotRequest(episode_id=episode.id, setting_id=harbour.id))
    assert shot.setting_id == harbour.id
    mara = await stub.CreateCharacter(
        studio_pb2.CreateCharacterRequest(
            project_id=project.id, name="Mara", reference_images=["http://ref/m.png"]
        )
    )
    oskar = await stub.CreateCharacter(studio_pb2.CreateCharacterRequest(project_id=project.id, name="Oskar"))
    await stub.LinkCharacter(studio_pb2.LinkCharacterRequest(shot_id=shot.id, character_id=oskar.id))
    linked = await stub.LinkCharacter(studio_pb2.LinkCharacterRequest(shot_id=shot.id, character_id=mara.id))
    again = await stub.LinkCharacter(studio_pb2.LinkCharacterRequest(shot_id=shot.id, character_id=mara.id))
    assert list(linked.character_ids) == [oskar.id, mara.id] == list(again.character_ids)
    unlinked = await stub.UnlinkCharacter(
        studio_pb2.UnlinkCharacterRequest(shot_id=shot.id, character_id=oskar.id)
    )
    assert list(unlinked.character_ids) == [mara.id]

    more = await stub.UpdateCharacter(
        studio_pb2.UpdateCharacterRequest(
            id=mara.id, reference_images=["http://ref/m2.png", "http://ref/m.png"]
        )
    )
    assert list(more.reference_images) == ["http://ref/m.png", "http://ref/m2.png"]
    moved = await stub.UpdateSetting(studio_pb2.UpdateSettingRequest(id=harbour.id, mood="calm"))
    assert (moved.location, moved.mood) == ("Harbour", "calm")

    await stub.DeleteSetting(studio_pb2.DeleteSettingRequest(id=harbour.id))
    assert (await stub.GetShot(studio_pb2.GetShotRequest(id=shot.id))).setting_id == ""
    await stub.DeleteCharacter(studio_pb2.DeleteCharacterRequest(id=mara.id))
    assert list((await stub.GetShot(studio_pb2.GetShotRequest(id=shot.id))).character_ids) == []


async def test_duplicates_are_already_exists(studio):
    stub = studio.stub
    project = await new_project(stub, "dup-slug")
    error = await failing(stub.CreateProject, studio_pb2.CreateProjectRequest(slug="dup-slug", name="Other"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "dup-slug" in error.details()

    episode = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=project.id, number=2))
    error = await failing(
        stub.CreateEpisode, studio_pb2.CreateEpisodeRequest(project_id=project.id, number=2)
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    other = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=project.id))
    error = await failing(stub.UpdateEpisode, studio_pb2.UpdateEpisodeRequest(id=other.id, number=2))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS

    await stub.CreateShot(studio_pb2.CreateShotRequest(episode_id=episode.id, shot_number=4))
    error = await failing(stub.CreateShot, studio_pb2.CreateShotRequest(episode_id=episode.id, shot_number=4))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS

    await stub.CreateCharacter(studio_pb2.CreateCharacterRequest(project_id=project.id, name="Mara"))
    error = await failing(
        stub.CreateCharacter, studio_pb2.CreateCharacterRequest(project_id=project.id, name="mara")
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_bad_input_is_invalid_argument_naming_every_field(studio):
    stub = studio.stub
    error = await failing(
        stub.CreateProject,
        studio_pb2.CreateProjectRequest(slug="Night Harbour", name=" ", default_models={"SMELL": "x"}),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == ["slug", "name", "default_models[SMELL]"]

    project = await new_project(stub)
    episode = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=project.id))
    error = await failing(
        stub.CreateShot,
        studio_pb2.CreateShotRequest(
            episode_id=episode.id,
            shot_number=-1,
            duration_seconds=-2,
            scene_descriptions=[studio_pb2.SceneDescription(character_name="", description="x")],
        ),
    )
    assert violations(error) == ["shot_number", "duration_seconds", "scene_descriptions[0].character_name"]
    shot = await stub.CreateShot(studio_pb2.CreateShotRequest(episode_id=episode.id))
    error = await failing(
        stub.CreateFrame, studio_pb2.CreateFrameRequest(shot_id=shot.id, url="file:///etc/passwd")
    )
    assert violations(error) == ["media_type", "url"]
    error = await failing(
        stub.CreateCharacter,
        studio_pb2.CreateCharacterRequest(
            project_id=project.id, name="Mara", reference_images=["javascript:x"]
        ),
    )
    assert violations(error) == ["reference_images[0]"]
    error = await failing(stub.CreateSetting, studio_pb2.CreateSettingRequest(project_id=project.id))
    assert violations(error) == ["location"]
    error = await failing(stub.GetShot, studio_pb2.GetShotRequest(id=""))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == ["id"]
    error = await failing(stub.GetShot, studio_pb2.GetShotRequest(id="not-an-id"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error = await failing(stub.GetCost, studio_pb2.GetCostRequest())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == ["scope"]


async def test_an_entity_of_another_project_or_episode_is_not_found(studio):
    stub = studio.stub
    mine = await new_project(stub)
    theirs = await new_project(stub)
    episode = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=mine.id))
    other_episode = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=mine.id))
    foreign_setting = await stub.CreateSetting(
        studio_pb2.CreateSettingRequest(project_id=theirs.id, location="Mars")
    )
    foreign_character = await stub.CreateCharacter(
        studio_pb2.CreateCharacterRequest(project_id=theirs.id, name="Stranger")
    )
    shot = await stub.CreateShot(studio_pb2.CreateShotRequest(episode_id=episode.id))
    elsewhere = await stub.CreateShot(studio_pb2.CreateShotRequest(episode_id=other_episode.id))

    for call, request in (
        (stub.CreateShot, studio_pb2.CreateShotRequest(episode_id=episode.id, setting_id=foreign_setting.id)),
        (stub.UpdateShot, studio_pb2.UpdateShotRequest(id=shot.id, setting_id=foreign_setting.id)),
        (
            stub.LinkCharacter,
            studio_pb2.LinkCharacterRequest(shot_id=shot.id, character_id=foreign_character.id),
        ),
        (
            stub.ReorderShots,
            studio_pb2.ReorderShotsRequest(episode_id=episode.id, shot_ids=[shot.id, elsewhere.id]),
        ),
        (stub.CreateEpisode, studio_pb2.CreateEpisodeRequest(project_id=str(uuid.uuid4()))),
    ):
        error = await failing(call, request)
        assert error.code() == grpc.StatusCode.NOT_FOUND, request
    assert (await stub.GetShot(studio_pb2.GetShotRequest(id=shot.id))).setting_id == ""


async def test_frames_are_numbered_and_one_picture_and_one_sound_are_chosen(studio):
    stub = studio.stub
    project = await new_project(stub)
    episode = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=project.id))
    shot = await stub.CreateShot(studio_pb2.CreateShotRequest(episode_id=episode.id))

    async def add(media, name):
        return await stub.CreateFrame(
            studio_pb2.CreateFrameRequest(
                shot_id=shot.id, media_type=media, url=f"http://media.invalid/{name}"
            )
        )

    first = await add(common_pb2.IMAGE, "a.png")
    second = await add(common_pb2.IMAGE, "b.png")
    sound = await add(common_pb2.AUDIO, "c.mp3")
    clip = await add(common_pb2.VIDEO, "d.mp4")
    assert [f.frame_number for f in (first, second, sound, clip)] == [1, 2, 3, 4]
    assert [f.selected for f in (first, second, sound, clip)] == [True, False, True, False]

    await stub.SelectFrame(studio_pb2.SelectFrameRequest(id=clip.id))
    frames = (await stub.ListFrames(studio_pb2.ListFramesRequest(shot_id=shot.id))).frames
    assert {f.id for f in frames if f.selected} == {clip.id, sound.id}

    error = await failing(stub.UpdateFrame, studio_pb2.UpdateFrameRequest(id=second.id, frame_number=1))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    moved = await stub.UpdateFrame(studio_pb2.UpdateFrameRequest(id=second.id, frame_number=9))
    assert moved.frame_number == 9
    await stub.DeleteFrame(studio_pb2.DeleteFrameRequest(id=first.id))
    after = await add(common_pb2.IMAGE, "e.png")
    assert after.frame_number == 10
    assert not after.selected


async def test_deleting_a_shot_removes_its_frames_and_generating_for_it_fails_precondition(studio):
    stub = studio.stub
    project = await new_project(stub, default_models={"IMAGE": "still-model"})
    episode = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=project.id))
    shot = await stub.CreateShot(studio_pb2.CreateShotRequest(episode_id=episode.id, description="a pier"))
    frame = await stub.CreateFrame(
        studio_pb2.CreateFrameRequest(
            shot_id=shot.id, media_type=common_pb2.IMAGE, url="http://media.invalid/a.png"
        )
    )
    await stub.DeleteShot(studio_pb2.DeleteShotRequest(id=shot.id))

    error = await failing(stub.ListFrames, studio_pb2.ListFramesRequest(shot_id=shot.id))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    async with studio.repo.db.connection() as conn:
        left = await (
            await conn.execute("SELECT count(*) FROM studio_frames WHERE id = %s", (frame.id,))
        ).fetchone()
    assert left[0] == 0
    error = await failing(
        stub.GenerateForShot, studio_pb2.GenerateForShotRequest(shot_id=shot.id, output_type=common_pb2.IMAGE)
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "deleted" in error.details()
    assert studio.dispatcher.requests == []
    error = await failing(
        stub.GenerateForShot,
        studio_pb2.GenerateForShotRequest(shot_id=str(uuid.uuid4()), output_type=common_pb2.IMAGE),
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


async def test_deleting_a_project_removes_its_episodes_shots_characters_settings_and_frames(studio):
    stub = studio.stub
    project = await new_project(stub)
    episode = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=project.id))
    shot = await stub.CreateShot(studio_pb2.CreateShotRequest(episode_id=episode.id))
    character = await stub.CreateCharacter(
        studio_pb2.CreateCharacterRequest(project_id=project.id, name="Mara")
    )
    setting = await stub.CreateSetting(
        studio_pb2.CreateSettingRequest(project_id=project.id, location="Pier")
    )
    frame = await stub.CreateFrame(
        studio_pb2.CreateFrameRequest(
            shot_id=shot.id, media_type=common_pb2.IMAGE, url="http://media.invalid/a.png"
        )
    )
    survivor = await new_project(stub)
    await stub.DeleteProject(studio_pb2.DeleteProjectRequest(id=project.slug))

    for call, request in (
        (stub.GetProject, studio_pb2.GetProjectRequest(id=project.id)),
        (stub.GetEpisode, studio_pb2.GetEpisodeRequest(id=episode.id)),
        (stub.GetShot, studio_pb2.GetShotRequest(id=shot.id)),
        (stub.GetCharacter, studio_pb2.GetCharacterRequest(id=character.id)),
        (stub.GetSetting, studio_pb2.GetSettingRequest(id=setting.id)),
        (stub.SelectFrame, studio_pb2.SelectFrameRequest(id=frame.id)),
    ):
        assert (await failing(call, request)).code() == grpc.StatusCode.NOT_FOUND, request
    assert (await stub.GetProject(studio_pb2.GetProjectRequest(id=survivor.id))).id == survivor.id
    error = await failing(
        stub.GenerateForShot, studio_pb2.GenerateForShotRequest(shot_id=shot.id, output_type=common_pb2.IMAGE)
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_deleting_an_episode_removes_its_shots_and_keeps_the_project(studio):
    stub = studio.stub
    project = await new_project(stub)
    episode = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=project.id))
    shot = await stub.CreateShot(studio_pb2.CreateShotRequest(episode_id=episode.id))
    await stub.DeleteEpisode(studio_pb2.DeleteEpisodeRequest(id=episode.id))
    assert (
        await failing(stub.GetShot, studio_pb2.GetShotRequest(id=shot.id))
    ).code() == grpc.StatusCode.NOT_FOUND
    assert (await stub.GetProject(studio_pb2.GetProjectRequest(id=project.id))).episode_count == 0
