"""Studio records as wire messages (aigen.v1 studio.proto)."""

from __future__ import annotations

from datetime import datetime

from aigen.v1 import common_pb2, studio_pb2
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp

from services.studio.domain import (
    Character,
    Episode,
    ExportRecord,
    Frame,
    MediaType,
    Project,
    SceneDescription,
    Setting,
    Shot,
    money,
)
from services.studio.repository import CostTotals

OUTPUT_TYPES = {
    MediaType.IMAGE: common_pb2.IMAGE,
    MediaType.VIDEO: common_pb2.VIDEO,
    MediaType.AUDIO: common_pb2.AUDIO,
}
MEDIA_TYPES = {v: k for k, v in OUTPUT_TYPES.items()}


def ts(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def project(p: Project) -> studio_pb2.Project:
    return studio_pb2.Project(
        id=str(p.id),
        slug=p.slug,
        name=p.name,
        description=p.description,
        default_models=dict(p.default_models),
        style_prompt=p.style_prompt,
        created_at=ts(p.created_at),
        updated_at=ts(p.updated_at),
        episode_count=p.episode_count,
    )


def episode(e: Episode) -> studio_pb2.Episode:
    return studio_pb2.Episode(
        id=str(e.id),
        project_id=str(e.project_id),
        number=e.number,
        title=e.title,
        synopsis=e.synopsis,
        script=e.script,
        created_at=ts(e.created_at),
        updated_at=ts(e.updated_at),
        shot_count=e.shot_count,
    )


def scenes_from(messages: list[studio_pb2.SceneDescription]) -> tuple[SceneDescription, ...]:
    return tuple(SceneDescription(m.character_name.strip(), m.description) for m in messages)


def shot(s: Shot) -> studio_pb2.Shot:
    return studio_pb2.Shot(
        id=str(s.id),
        episode_id=str(s.episode_id),
        shot_number=s.shot_number,
        title=s.title,
        description=s.description,
        action=s.action,
        camera=s.camera,
        duration_seconds=s.duration_seconds,
        scene_descriptions=[
            studio_pb2.SceneDescription(character_name=d.character_name, description=d.description)
            for d in s.scene_descriptions
        ],
        order=s.position,
        setting_id=str(s.setting_id) if s.setting_id else "",
        character_ids=[str(c) for c in s.character_ids],
        created_at=ts(s.created_at),
        updated_at=ts(s.updated_at),
    )


def character(c: Character) -> studio_pb2.Character:
    return studio_pb2.Character(
        id=str(c.id),
        project_id=str(c.project_id),
        name=c.name,
        description=c.description,
        reference_images=list(c.reference_images),
        created_at=ts(c.created_at),
        updated_at=ts(c.updated_at),
    )


def setting(s: Setting) -> studio_pb2.Setting:
    return studio_pb2.Setting(
        id=str(s.id),
        project_id=str(s.project_id),
        location=s.location,
        time_of_day=s.time_of_day,
        mood=s.mood,
        description=s.description,
        created_at=ts(s.created_at),
        updated_at=ts(s.updated_at),
    )


def frame(f: Frame) -> studio_pb2.Frame:
    return studio_pb2.Frame(
        id=str(f.id),
        shot_id=str(f.shot_id),
        frame_number=f.frame_number,
        media_type=OUTPUT_TYPES[f.media_type],
        url=f.url,
        task_id=f.task_id or "",
        selected=f.selected,
        storage_key=f.storage_key,
        created_at=ts(f.created_at),
    )


def export(e: ExportRecord, url: str | None = None) -> studio_pb2.Export:
    details = Struct()
    details.update(dict(e.details))
    return studio_pb2.Export(
        id=str(e.id),
        episode_id=str(e.episode_id),
        kind=e.kind,
        url=url if url is not None else e.url,
        storage_key=e.storage_key,
        size=e.size,
        created_at=ts(e.created_at),
        details=details,
        content_type=e.content_type,
    )


def cost(totals: CostTotals) -> studio_pb2.CostSummary:
    return studio_pb2.CostSummary(
        quoted_usd=money(totals.quoted),
        settled_usd=money(totals.settled),
        total_usd=money(totals.total),
        task_count=totals.tasks,
    )
