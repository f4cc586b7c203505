"""Exporting an episode: check every shot has a chosen picture, bring the media here, build the
file, put it in object storage under `studio/<project slug>/<episode id>/<export id>.<ext>`, and
record it so the episode lists its exports."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aigen.errors import FailedPrecondition, Violation
from PIL import Image

from services.studio import domain
from services.studio.domain import (
    Episode,
    ExportKind,
    ExportPlan,
    ExportRecord,
    ExportSpec,
    Frame,
    MediaType,
    Project,
    ShotTakes,
)
from services.studio.export import animatic, storyboard, timeline, tools
from services.studio.export.media import MediaFetcher
from services.studio.repository import StudioRepository
from services.studio.storage import ObjectStore

STORYBOARDS = (ExportKind.STORYBOARD_HTML, ExportKind.STORYBOARD_PDF)
TIMELINES = (ExportKind.OTIO, ExportKind.FCPXML)


def frames_needed(kind: ExportKind, shots: list[ShotTakes]) -> list[Frame]:
    """What must be read locally: pictures for the animatic and the storyboard, sounds for the
    animatic; a timeline links to its media and reads only clips and sounds, for their length."""
    needed: list[Frame] = []
    for takes in shots:
        picture = takes.picture
        assert picture is not None
        if kind is ExportKind.ANIMATIC or kind in STORYBOARDS or picture.media_type is MediaType.VIDEO:
            needed.append(picture)
        if kind not in STORYBOARDS and takes.audio is not None:
            needed.append(takes.audio)
    return needed


def as_png(source: Path) -> Path:
    """Stills go to ffmpeg as PNG whatever they came as (WebP, GIF, JPEG with odd headers …)."""
    target = source.with_name(source.stem + "-still.png")
    with Image.open(source) as image:
        image.convert("RGB").save(target, "PNG")
    return target


class EpisodeExporter:
    def __init__(
        self, repo: StudioRepository, store: ObjectStore, fetcher: MediaFetcher, workdir: Path | None = None
    ):
        self.repo = repo
        self.store = store
        self.fetcher = fetcher
        self.workdir = workdir

    async def export(self, episode_id: uuid.UUID, spec: ExportSpec) -> ExportRecord:
        episode = await self.repo.get_episode(episode_id)
        project = await self.repo.get_project(str(episode.project_id))
        shots = domain.require_pictures(await self.repo.episode_takes(episode_id))
        folder = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="studio-export-", dir=self.workdir))
        try:
            media = await self.fetcher.fetch_all(frames_needed(spec.kind, shots), folder)
            lengths = await self._lengths(shots, media)
            plan = domain.plan_export(shots, lengths)
            export_id = uuid.uuid4()
            out = folder / f"{export_id}.{spec.kind.extension}"
            try:
                await self._build(spec, plan, media, project, episode, folder, out)
            except (tools.ToolError, OSError) as exc:
                # Unreadable or corrupt media is the usual cause: the caller can pick other takes.
                raise FailedPrecondition(
                    f"the {spec.kind.value} export could not be built: {exc}",
                    [Violation("episode_id", f"building the {spec.kind.value} failed: {exc}")],
                    reason="EXPORT_FAILED",
                ) from exc
            key = domain.export_key(project.slug, episode.id, export_id, spec.kind)
            stored = await self.store.put(key, out, spec.kind.content_type)
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        return await self.repo.add_export(
            ExportRecord(
                id=export_id,
                episode_id=episode.id,
                kind=spec.kind.value,
                storage_key=stored.key,
                url=stored.url,
                content_type=spec.kind.content_type,
                size=stored.size,
                details=details(plan, spec),
                created_at=datetime.now(UTC),
            )
        )

    async def _lengths(
        self, shots: list[ShotTakes], media: Mapping[uuid.UUID, Path]
    ) -> dict[uuid.UUID, float]:
        """How long each video and sound read here lasts (stills have no length of their own)."""
        lengths: dict[uuid.UUID, float] = {}
        for takes in shots:
            for frame in (takes.picture, takes.audio):
                if frame is not None and frame.media_type is not MediaType.IMAGE and frame.id in media:
                    info = await tools.probe(media[frame.id])
                    if info.duration:
                        lengths[frame.id] = info.duration
        return lengths

    async def _build(
        self,
        spec: ExportSpec,
        plan: ExportPlan,
        media: Mapping[uuid.UUID, Path],
        project: Project,
        episode: Episode,
        folder: Path,
        out: Path,
    ) -> None:
        name = f"{project.name} — Episode {episode.number}" + (f": {episode.title}" if episode.title else "")
        if spec.kind is ExportKind.ANIMATIC:
            inputs = dict(media)
            for cut in plan.cuts:
                if cut.picture.media_type is MediaType.IMAGE:
                    inputs[cut.picture.id] = await asyncio.to_thread(as_png, media[cut.picture.id])
            await animatic.render_animatic(plan, inputs, spec, out)
        elif spec.kind in STORYBOARDS:
            cards = []
            for cut in plan.cuts:
                still = await storyboard.still_of(cut, media[cut.picture.id], folder)
                cards.append(
                    storyboard.Card(
                        shot_number=cut.shot.shot_number,
                        title=cut.shot.title,
                        description=cut.shot.description,
                        action=cut.shot.action,
                        camera=cut.shot.camera,
                        duration=cut.duration,
                        still=still,
                        has_audio=cut.audio is not None,
                    )
                )
            subtitle = f"{len(cards)} shots · {storyboard.seconds_text(plan.duration)}"
            board = storyboard.Board(name, subtitle, cards)
            writer = (
                storyboard.write_html if spec.kind is ExportKind.STORYBOARD_HTML else storyboard.write_pdf
            )
            await asyncio.to_thread(writer, board, out)
        else:
            built = timeline.build_timeline(plan, spec, name)
            await asyncio.to_thread(timeline.write_timeline, built, spec.kind, out)


def details(plan: ExportPlan, spec: ExportSpec) -> dict[str, Any]:
    return {
        "shots": len(plan.cuts),
        "duration_seconds": round(plan.duration, 3),
        "has_audio": plan.has_audio,
        "width": spec.width,
        "height": spec.height,
        "fps": spec.fps,
        "shot_numbers": [c.shot.shot_number for c in plan.cuts],
    }
