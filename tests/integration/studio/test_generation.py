"""GenerateForShot over gRPC: the request Studio sends the dispatcher, and what it refuses."""

from __future__ import annotations

import grpc
import pytest
from aigen.grpcx.status import from_rpc_error
from aigen.v1 import common_pb2, generation_pb2, studio_pb2
from google.protobuf.struct_pb2 import Struct


async def failing(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        await call(request)
    return info.value


@pytest.fixture
async def scene(studio):
    """A project with defaults and a style, a setting, two characters linked to one shot."""
    stub = studio.stub
    project = await stub.CreateProject(
        studio_pb2.CreateProjectRequest(
            slug="lighthouse",
            name="Lighthouse",
            default_models={"IMAGE": "still-model", "AUDIO": "voice-model"},
            style_prompt="Ink and watercolour",
        )
    )
    setting = await stub.CreateSetting(
        studio_pb2.CreateSettingRequest(project_id=project.id, location="Cliff top", time_of_day="dawn")
    )
    mara = await stub.CreateCharacter(
        studio_pb2.CreateCharacterRequest(
            project_id=project.id,
            name="Mara",
            description="keeper in a yellow coat",
            reference_images=["http://ref.invalid/mara-1.png", "http://ref.invalid/mara-2.png"],
        )
    )
    oskar = await stub.CreateCharacter(
        studio_pb2.CreateCharacterRequest(
            project_id=project.id,
            name="Oskar",
            description="her brother",
            reference_images=["http://ref.invalid/oskar.png"],
        )
    )
    episode = await stub.CreateEpisode(studio_pb2.CreateEpisodeRequest(project_id=project.id))
    shot = await stub.CreateShot(
        studio_pb2.CreateShotRequest(
            episode_id=episode.id,
            description="The lamp is lit",
            camera="wide",
            setting_id=setting.id,
            scene_descriptions=[
                studio_pb2.SceneDescription(character_name="Mara", description="Light it now.")
            ],
        )
    )
    for character in (mara, oskar):
        await stub.LinkCharacter(studio_pb2.LinkCharacterRequest(shot_id=shot.id, character_id=character.id))
    return project, episode, shot


async def test_generation_composes_the_prompt_and_sends_character_references_the_model_accepts(studio, scene):
    stub = studio.stub
    _, episode, shot = scene
    composed = await stub.ComposePrompt(
        studio_pb2.ComposePromptRequest(shot_id=shot.id, output_type=common_pb2.IMAGE)
    )
    parameters = Struct()
    parameters.update({"style": "aurora"})
    task = await stub.GenerateForShot(
        studio_pb2.GenerateForShotRequest(
            shot_id=shot.id,
            output_type=common_pb2.IMAGE,
            parameters=parameters,
            number_of_outputs=2,
            request_id="r-1",
        )
    )
    sent = studio.dispatcher.requests[-1]
    assert sent.model == "still-model"  # the project's default for IMAGE
    assert sent.prompt == composed.prompt
    assert sent.prompt.splitlines() == [
        "Ink and watercolour.",
        "Setting: Cliff top, dawn.",
        "Camera: wide.",
        "The lamp is lit.",
        "Mara: keeper in a yellow coat. In this shot: Light it now.",
        "Oskar: her brother.",
    ]
    # still-model takes two input images: the first two references, in link order.
    assert list(sent.input_images) == ["http://ref.invalid/mara-1.png", "http://ref.invalid/mara-2.png"]
    assert sent.shot_id == shot.id
    assert sent.owner == "studio"
    assert sent.request_id == "r-1"
    assert sent.number_of_outputs == 2
    assert sent.parameters["style"] == "aurora"

    history = await stub.ShotTaskHistory(studio_pb2.ShotTaskHistoryRequest(shot_id=shot.id))
    assert [t.id for t in history.tasks] == [task.id]
    overview = await stub.EpisodeOverview(studio_pb2.EpisodeOverviewRequest(episode_id=episode.id))
    assert [t.id for t in overview.shots[0].running_tasks] == [task.id]
    cost = await stub.GetCost(studio_pb2.GetCostRequest(shot_id=shot.id))
    assert (cost.quoted_usd, cost.settled_usd, cost.total_usd, cost.task_count) == ("0.04", "0", "0.04", 1)


async def test_an_edited_prompt_and_explicit_references_are_sent_as_given(studio, scene):
    _, _, shot = scene
    await studio.stub.GenerateForShot(
        studio_pb2.GenerateForShotRequest(
            shot_id=shot.id,
            model="still-model",
            prompt="Just the lamp",
            reference_images=["http://ref.invalid/lamp.png"],
            owner="editor-7",
        )
    )
    sent = studio.dispatcher.requests[-1]
    assert (sent.prompt, list(sent.input_images), sent.owner) == (
        "Just the lamp",
        ["http://ref.invalid/lamp.png"],
        "editor-7",
    )


async def test_a_model_without_image_input_gets_no_references_and_sound_gets_only_what_is_heard(
    studio, scene
):
    _, _, shot = scene
    await studio.stub.GenerateForShot(
        studio_pb2.GenerateForShotRequest(shot_id=shot.id, model="text-only-still")
    )
    assert list(studio.dispatcher.requests[-1].input_images) == []
    await studio.stub.GenerateForShot(
        studio_pb2.GenerateForShotRequest(shot_id=shot.id, output_type=common_pb2.AUDIO)
    )
    sent = studio.dispatcher.requests[-1]
    assert (sent.model, sent.prompt) == ("voice-model", "Light it now.")


async def test_generation_refuses_what_cannot_work(studio, scene):
    stub = studio.stub
    _, _, shot = scene
    cases = [
        (
            studio_pb2.GenerateForShotRequest(shot_id=shot.id),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["output_type"],
        ),
        (
            studio_pb2.GenerateForShotRequest(shot_id=shot.id, output_type=common_pb2.VIDEO),
            grpc.StatusCode.FAILED_PRECONDITION,
            ["model"],
        ),
        (
            studio_pb2.GenerateForShotRequest(
                shot_id=shot.id, output_type=common_pb2.VIDEO, model="still-model"
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["model"],
        ),
        (
            studio_pb2.GenerateForShotRequest(shot_id=shot.id, model="no-such-model"),
            grpc.StatusCode.NOT_FOUND,
            [],
        ),
        (
            studio_pb2.GenerateForShotRequest(
                shot_id=shot.id, model="text-only-still", reference_images=["http://ref.invalid/x.png"]
            ),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["reference_images"],
        ),
        (
            studio_pb2.GenerateForShotRequest(shot_id=shot.id, model="still-model", number_of_outputs=-1),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["number_of_outputs"],
        ),
        (
            studio_pb2.GenerateForShotRequest(shot_id="", model="still-model"),
            grpc.StatusCode.INVALID_ARGUMENT,
            ["shot_id"],
        ),
    ]
    for request, code, fields in cases:
        error = await failing(stub.GenerateForShot, request)
        assert error.code() == code, (request, error.details())
        assert [v.field for v in getattr(from_rpc_error(error), "violations", ())] == fields, request
    assert studio.dispatcher.requests == []


async def test_task_history_pages_through_every_task_of_the_shot(studio, scene):
    stub = studio.stub
    _, _, shot = scene
    ids = []
    for _ in range(5):
        task = await stub.GenerateForShot(
            studio_pb2.GenerateForShotRequest(shot_id=shot.id, model="still-model")
        )
        ids.append(task.id)
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ShotTaskHistory(
            studio_pb2.ShotTaskHistoryRequest(shot_id=shot.id, page_size=2, page_token=token)
        )
        seen.extend(t.id for t in page.tasks)
        assert len(page.tasks) <= 2
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(ids)
    assert len(seen) == 5
    assert all(isinstance(t, generation_pb2.Task) for t in page.tasks)
    error = await failing(
        stub.ShotTaskHistory, studio_pb2.ShotTaskHistoryRequest(shot_id=shot.id, page_token="garbage")
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
