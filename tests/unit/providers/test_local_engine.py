"""The local engines' pure parts: parameter checks, frame sizes, clip timing, progress lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from aigen.modeldefs.loader import build_catalog
from aigen.modeldefs.schema import DefinitionFile, FieldType
from aigen.modeldefs.validation import Invalid, Valid, validate_request
from aigen.modeldefs.yamlfile import parse_yaml
from aigen.providers.local import artwork, motion
from aigen.providers.local.models import (
    MODELS,
    ImageSettings,
    VideoSettings,
    checked_parameters,
    frame_size,
    video_settings,
)
from aigen.providers.local.params import Choice, Flag, Number, ParameterError
from aigen.providers.local.process import progress_seconds
from aigen.providers.local.tools import MODEL_REQUIREMENTS, Toolbox

DEFINITIONS = Path(__file__).resolve().parents[3] / "libs/aigen/modeldefs/definitions/local.yaml"


def video(**overrides: object) -> VideoSettings:
    return video_settings(checked_parameters(MODELS["local-video"], overrides))


def test_defaults_are_applied_and_values_checked() -> None:
    values = checked_parameters(MODELS["local-image"], {"width": 640.0})
    assert values == {"width": 640, "height": 1024, "style": "aurora", "show_text": True, "seed": 0}
    assert isinstance(values["width"], int)

    with pytest.raises(ParameterError) as not_whole:
        checked_parameters(MODELS["local-image"], {"width": 640.5})
    assert not_whole.value.field == "parameters.width"
    with pytest.raises(ParameterError, match=r"parameters.show_text: must be true or false"):
        checked_parameters(MODELS["local-image"], {"show_text": "yes"})
    with pytest.raises(ParameterError, match=r"parameters.speed: must be between 80 and 450"):
        checked_parameters(MODELS["local-tts"], {"speed": 1000})
    with pytest.raises(ParameterError, match=r"parameters.duration: must be a number"):
        checked_parameters(MODELS["local-video"], {"duration": True})


@pytest.mark.parametrize(
    ("resolution", "ratio", "size"),
    [
        ("480p", "16:9", (854, 480)),
        ("720p", "16:9", (1280, 720)),
        ("1080p", "16:9", (1920, 1080)),
        ("1080p", "9:16", (1080, 1920)),
        ("720p", "1:1", (720, 720)),
        ("480p", "4:3", (640, 480)),
        ("480p", "3:4", (480, 640)),
    ],
)
def test_named_resolutions_give_even_frame_sizes(resolution: str, ratio: str, size: tuple[int, int]) -> None:
    assert frame_size(resolution, ratio) == size
    assert (video(resolution=resolution, aspect_ratio=ratio).width, video().height) == (size[0], 720)


def test_explicit_width_and_height_replace_the_named_resolution() -> None:
    assert (video(width=320, height=240).width, video(width=320, height=240).height) == (320, 240)
    with pytest.raises(ParameterError) as half:
        video(height=240)
    assert half.value.field == "parameters.width"


@pytest.mark.parametrize("clips", [1, 2, 3, 8])
@pytest.mark.parametrize(("duration", "fps"), [(1, 12), (1.3, 25), (5, 24), (30, 60)])
def test_clips_cover_the_requested_frames_with_room_for_transitions(
    clips: int, duration: float, fps: int
) -> None:
    settings = video(duration=duration, fps=fps)
    plan = motion.timeline(clips, settings)

    assert plan.total_frames == settings.frames == max(1, round(duration * fps))
    assert clips * plan.clip_frames - (clips - 1) * plan.transition_frames >= plan.total_frames
    # Not much more than needed: the encoder cuts the rest, which would be wasted work.
    assert clips * plan.clip_frames - (clips - 1) * plan.transition_frames < plan.total_frames + clips
    assert plan.transition_frames <= fps
    assert plan.transition_frames < plan.clip_frames
    if clips == 1:
        assert plan.transition_frames == 0


def test_filter_graph_alternates_motion_and_joins_with_the_chosen_transition() -> None:
    graph = motion.filter_graph(3, video(motion="pan-left", transition="wipe-left", duration=6, fps=24))
    assert graph.count("zoompan=") == 3
    assert graph.count("xfade=transition=wipeleft") == 2
    assert "(1-" in graph.split(";")[0]  # pan-left travels from the right edge
    assert "(1-" not in graph.split(";")[1]  # the next clip pans back
    assert graph.endswith("[out]")


def test_a_prompt_frame_keeps_its_caption_inside_every_crop() -> None:
    assert motion.CROP_MARGIN >= 1 - 1 / motion.PAN_ZOOM
    assert motion.CROP_MARGIN >= (1 - 1 / motion.ZOOM) / 2


@pytest.mark.parametrize(
    ("line", "seconds"),
    [
        ("out_time_us=2375081", 2.375081),
        ("out_time_us=N/A", None),
        ("out_time_ms=2375081", None),
        ("frame=3", None),
    ],
)
def test_progress_lines_of_ffmpeg(line: str, seconds: float | None) -> None:
    assert progress_seconds(line + "\n") == seconds


def test_pictures_are_deterministic_and_sized() -> None:
    settings = ImageSettings(120, 80, "geometric", True, 3)
    first = artwork.render_png("same prompt", settings)
    assert artwork.render_png("same prompt", settings) == first
    assert artwork.render("same prompt", settings).size == (120, 80)
    assert artwork.render_png("other prompt", settings) != first


def test_long_and_unspaced_text_wraps_within_the_width() -> None:
    face, lines = artwork.fit_lines("长" * 300, (400, 300), 300)
    assert 1 < len(lines) <= 4
    assert lines[-1].endswith("…")
    assert all(face.getlength(line) <= 300 for line in lines)


def test_missing_programs_make_only_their_models_unavailable(tmp_path: Path) -> None:
    bare = Toolbox.find(search_path=str(tmp_path))
    assert set(bare.availability()) == set(MODEL_REQUIREMENTS) == set(MODELS)
    assert bare.unavailable_reason("local-image") is None
    reason = bare.unavailable_reason("local-tts")
    assert reason is not None
    assert reason.startswith("espeak-ng, ffmpeg not found on search path")
    assert "apt-get install espeak-ng" in reason


def test_the_definition_file_mirrors_what_the_service_accepts() -> None:
    definitions = DefinitionFile.model_validate(parse_yaml(DEFINITIONS.read_text()))
    assert {m.slug for m in definitions.models} == set(MODELS)
    (provider,) = definitions.providers
    assert (provider.slug, provider.auth, provider.upload_to_s3) == ("local", "none", True)
    for model in definitions.models:
        engine = MODELS[model.slug]
        assert model.pricing.currency == "usd"
        assert model.pricing.expr == "0"
        assert set(model.requires) == set(MODEL_REQUIREMENTS[model.slug])
        assert model.outputs.max == engine.max_outputs
        assert model.input_images.max == engine.max_input_images
        assert model.prompt.max_length == engine.max_prompt_chars
        assert model.prompt.required == engine.prompt_required
        fields = {f.key: f for f in model.fields}
        assert set(fields) == {spec.key for spec in engine.params}, model.slug
        for spec in engine.params:
            field = fields[spec.key]
            assert field.default == spec.default, (model.slug, spec.key)
            if isinstance(spec, Choice):
                assert field.type is FieldType.SELECT
                assert tuple(o.value for o in field.options) == spec.choices
            elif isinstance(spec, Flag):
                assert field.type is FieldType.BOOLEAN
            else:
                assert isinstance(spec, Number)
                assert field.type is FieldType.NUMBER
                assert (field.min, field.max, field.integer) == (spec.minimum, spec.maximum, spec.integer)
                if spec.even:
                    assert field.step == 2


@pytest.mark.parametrize(
    ("slug", "sent"),
    [
        ("local-image", {}),
        ("local-image", {"width": 300, "style": "bokeh", "show_text": False}),
        ("local-tts", {"voice": "cmn", "output_format": "wav"}),
        ("local-video", {}),
        ("local-video", {"duration": 2.5, "width": 320, "height": 180, "motion": "pan-right"}),
    ],
)
def test_what_the_catalog_validates_the_service_accepts_unchanged(slug: str, sent: dict[str, object]) -> None:
    catalog = build_catalog([(DEFINITIONS.name, DEFINITIONS.read_text())])
    checked = validate_request(catalog.model(slug), sent, prompt="a prompt", number_of_outputs=1)
    assert isinstance(checked, Valid), checked
    accepted = checked_parameters(MODELS[slug], checked.parameters)
    assert {k: v for k, v in accepted.items() if v is not None} == checked.parameters


def test_the_catalog_refuses_a_width_without_a_height_as_the_service_does() -> None:
    catalog = build_catalog([(DEFINITIONS.name, DEFINITIONS.read_text())])
    checked = validate_request(catalog.model("local-video"), {"width": 320}, prompt="x")
    assert isinstance(checked, Invalid)
    assert [v.field for v in checked.violations] == ["parameters.height"]
