"""Parameters → provider request bodies (no I/O)."""

from __future__ import annotations

from aigen.providers.mapping import map_parameters, set_path, wire_value


def test_dotted_destinations_nest_and_none_is_left_out() -> None:
    body = map_parameters(
        {"stability": 0.5, "similarity_boost": 0.75, "text": "hi", "seed": None},
        {"stability": "voice_settings.stability", "similarity_boost": "voice_settings.similarity_boost"},
    )
    assert body == {"text": "hi", "voice_settings": {"stability": 0.5, "similarity_boost": 0.75}}


def test_already_dotted_keys_nest_the_same_way_and_skip_drops_keys() -> None:
    body = map_parameters({"voice_settings.speed": 1.1, "voice_id": "abc"}, skip={"voice_id"})
    assert body == {"voice_settings": {"speed": 1.1}}


def test_whole_floats_from_a_protobuf_struct_become_integers() -> None:
    assert wire_value(4.0) == 4
    assert isinstance(wire_value(4.0), int)
    assert wire_value(0.5) == 0.5
    assert wire_value([1.0, {"a": 2.0}]) == [1, {"a": 2}]
    assert map_parameters({"num_outputs": 2.0})["num_outputs"] == 2
    assert wire_value(True) is True


def test_set_path_replaces_a_scalar_in_the_way() -> None:
    body: dict[str, object] = {"a": 1}
    set_path(body, "a.b", 2)
    assert body == {"a": {"b": 2}}
