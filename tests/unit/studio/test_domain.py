"""Studio's pure rules: numbering, reordering, take selection, prompt composition, cost, export plan."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from aigen.errors import FailedPrecondition, InvalidArgument, NotFound

from services.studio import domain
from services.studio.domain import (
    Character,
    Frame,
    MediaType,
    PromptSources,
    SceneDescription,
    Setting,
    Shot,
    ShotTakes,
    Slot,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def shot(**fields) -> Shot:
    base = {
        "id": uuid.uuid4(),
        "episode_id": uuid.uuid4(),
        "shot_number": 1,
        "position": 1,
        "title": "",
        "description": "",
        "action": "",
        "camera": "",
        "duration_seconds": 0.0,
        "scene_descriptions": (),
        "setting_id": None,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Shot(**{**base, **fields})


def character(name: str, description: str = "", images: tuple[str, ...] = ()) -> Character:
    return Character(uuid.uuid4(), uuid.uuid4(), name, description, images, NOW, NOW)


def frame(media: MediaType, shot_id: uuid.UUID | None = None) -> Frame:
    return Frame(uuid.uuid4(), shot_id or uuid.uuid4(), 1, media, "http://media/x", "", None, True, NOW)


def test_numbers_continue_after_the_highest_and_start_at_one():
    assert domain.next_number([]) == 1
    assert domain.next_number([1, 2, 7]) == 8


def test_reorder_needs_every_shot_once_and_rejects_shots_of_other_episodes():
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert domain.reorder([a, b, c], [str(c), str(a), str(b)]) == [c, a, b]
    with pytest.raises(InvalidArgument) as missing:
        domain.reorder([a, b, c], [str(c), str(a)])
    assert missing.value.violations[0].field == "shot_ids"
    assert str(b) in missing.value.message
    with pytest.raises(InvalidArgument) as twice:
        domain.reorder([a, b], [str(a), str(a)])
    assert twice.value.violations[0].field == "shot_ids[1]"
    with pytest.raises(NotFound):
        domain.reorder([a, b], [str(a), str(uuid.uuid4())])


def test_the_first_new_take_of_each_slot_is_selected_only_where_the_shot_has_none():
    new = [MediaType.IMAGE, MediaType.IMAGE, MediaType.AUDIO, MediaType.VIDEO]
    assert domain.auto_selection([], new) == [True, False, True, False]
    assert domain.auto_selection([Slot.PICTURE], new) == [False, False, True, False]
    assert domain.auto_selection([Slot.PICTURE, Slot.AUDIO], new) == [False] * 4


def test_result_types_map_to_media_types_with_the_task_output_as_fallback():
    assert domain.media_type_of_result("video", MediaType.IMAGE) is MediaType.VIDEO
    assert domain.media_type_of_result("", MediaType.AUDIO) is MediaType.AUDIO
    assert domain.media_type_of_result("weird", None) is MediaType.IMAGE


def sources() -> PromptSources:
    mara = character(
        "Mara", "a tall lighthouse keeper in a yellow coat", ("http://ref/mara1.png", "http://ref/shared.png")
    )
    oskar = character("Oskar", "her grey-bearded brother", ("http://ref/shared.png", "http://ref/oskar.png"))
    setting = Setting(
        uuid.uuid4(), uuid.uuid4(), "Harbour", "night", "tense", "Fog rolls over the piers", NOW, NOW
    )
    s = shot(
        description="Mara watches a ship approach",
        action="she raises a lantern",
        camera="close-up",
        scene_descriptions=(
            SceneDescription("mara", "Mara: Who goes there?"),
            SceneDescription("Captain", "A voice answers from the dark"),
        ),
    )
    return PromptSources("Painterly, muted colours", setting, s, [mara, oskar])


def test_picture_prompt_joins_style_setting_camera_shot_and_each_characters_description():
    prompt = domain.compose_prompt(MediaType.IMAGE, sources())
    lines = prompt.splitlines()
    assert lines[0] == "Painterly, muted colours."
    assert lines[1] == "Setting: Harbour, night; mood: tense."
    assert lines[2] == "Fog rolls over the piers."
    assert lines[3] == "Camera: close-up."
    assert lines[4] == "Mara watches a ship approach."
    assert lines[5] == "Action: she raises a lantern."
    assert lines[6] == "Mara: a tall lighthouse keeper in a yellow coat. In this shot: Mara: Who goes there?"
    assert lines[7] == "Oskar: her grey-bearded brother."
    assert lines[8] == "Captain: A voice answers from the dark."


def test_sound_prompt_is_only_what_is_heard():
    assert domain.compose_prompt(MediaType.AUDIO, sources()) == (
        "Mara: Who goes there?\nA voice answers from the dark"
    )
    bare = PromptSources("style", None, shot(description="Waves crash."), [])
    assert domain.compose_prompt(MediaType.AUDIO, bare) == "Waves crash."


def test_cjk_sentences_keep_their_own_full_stop():
    s = PromptSources("水墨画风格。", None, shot(description="灯塔在夜里"), [])
    assert domain.compose_prompt(MediaType.IMAGE, s).splitlines() == ["水墨画风格。", "灯塔在夜里."]


def test_reference_images_come_from_linked_characters_in_order_once_and_capped():
    chars = sources().characters
    assert domain.reference_images(chars, 10) == [
        "http://ref/mara1.png",
        "http://ref/shared.png",
        "http://ref/oskar.png",
    ]
    assert domain.reference_images(chars, 2) == ["http://ref/mara1.png", "http://ref/shared.png"]
    assert domain.reference_images(chars, 0) == []


@pytest.mark.parametrize(
    ("status", "quote", "charge", "expected"),
    [
        ("PENDING", "0.03", None, ("0.03", "0")),
        ("PROCESSING", "0.03", "0.02", ("0.03", "0")),
        ("SUCCESS", "0.03", "0.025", ("0", "0.025")),
        ("SUCCESS", "0.03", None, ("0", "0.03")),
        ("FAILED", "0.03", None, ("0", "0")),
        ("FAILED", "0.03", "0.01", ("0", "0.01")),
        ("CANCELLED", "0.03", None, ("0", "0")),
    ],
)
def test_cost_of_a_task_is_its_quote_while_running_and_what_it_cost_once_settled(
    status, quote, charge, expected
):
    quoted, settled = domain.task_cost(status, Decimal(quote), Decimal(charge) if charge else None)
    assert (quoted, settled) == (Decimal(expected[0]), Decimal(expected[1]))


def test_money_text_is_exact():
    assert domain.money(Decimal("0.030000")) == "0.03"
    assert domain.money(Decimal("1.234500")) == "1.2345"
    assert domain.money(Decimal("2")) == "2.00"
    assert domain.money(Decimal(0)) == "0"
    assert domain.usd("nonsense") == Decimal(0)
    assert domain.usd("") == Decimal(0)


def test_export_needs_a_chosen_picture_in_every_shot_and_names_the_ones_without():
    ok = shot(shot_number=1)
    lacking = shot(shot_number=2)
    with pytest.raises(FailedPrecondition) as info:
        domain.plan_export([ShotTakes(ok, frame(MediaType.IMAGE), None), ShotTakes(lacking, None, None)], {})
    assert "2" in info.value.message
    assert [v.field for v in info.value.violations] == [f"shots/{lacking.id}"]
    with pytest.raises(FailedPrecondition, match="no shots"):
        domain.plan_export([], {})


def test_export_plan_times_each_shot_by_its_duration_else_clip_length_else_default():
    still = frame(MediaType.IMAGE)
    clip = frame(MediaType.VIDEO)
    sound = frame(MediaType.AUDIO)
    plan = domain.plan_export(
        [
            ShotTakes(shot(shot_number=1, duration_seconds=2.5), still, None),
            ShotTakes(shot(shot_number=2), clip, sound),
            ShotTakes(shot(shot_number=3), frame(MediaType.IMAGE), None),
        ],
        {clip.id: 4.2},
    )
    assert [c.start for c in plan.cuts] == [0.0, 2.5, 6.7]
    assert [c.duration for c in plan.cuts] == [2.5, 4.2, domain.DEFAULT_STILL_SECONDS]
    assert plan.has_audio
    assert plan.duration == pytest.approx(9.7)


def test_export_spec_defaults_and_names_bad_fields():
    spec = domain.export_spec("animatic", 0, 0, 0)
    assert (spec.width, spec.height, spec.fps) == (1280, 720, 25)
    with pytest.raises(InvalidArgument) as info:
        domain.export_spec("gif", 1281, 10, 120)
    assert {v.field for v in info.value.violations} == {"kind", "width", "height", "fps"}


def test_field_checks_collect_every_problem():
    problems = domain.Problems()
    problems.name("", "name")
    problems.duration(float("nan"), "duration_seconds")
    problems.number(-1, "number")
    domain.check_reference_images(problems, ["ftp://x", "data:text/plain,hi"], "reference_images")
    domain.check_default_models(problems, {"SMELL": "x", "IMAGE": ""}, "default_models", merging=False)
    with pytest.raises(InvalidArgument) as info:
        problems.raise_if_any()
    fields = [v.field for v in info.value.violations]
    assert fields == [
        "name",
        "duration_seconds",
        "number",
        "reference_images[0]",
        "reference_images[1]",
        "default_models[SMELL]",
        "default_models[IMAGE]",
    ]
    assert domain.slug_problem("Night Harbour")
    assert domain.slug_problem("-x")
    assert not domain.slug_problem("night-1")


def test_default_models_merge_removes_with_an_empty_slug():
    current = {"IMAGE": "a", "VIDEO": "b"}
    assert domain.merge_default_models(current, {"VIDEO": "", "AUDIO": "c"}, replace=False) == {
        "IMAGE": "a",
        "AUDIO": "c",
    }
    assert domain.merge_default_models(current, {"AUDIO": "c"}, replace=True) == {"AUDIO": "c"}
