"""StudioService: projects, episodes, shots, characters, settings, frames; generation from a
shot, its task history, the episode overview, cost, and episode exports.

Each method checks its request (every bad field named at once), then hands the work to the
repository (numbering and selection rules from `domain`), to `ShotGeneration` or to the exporter.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from aigen.errors import InvalidArgument
from aigen.v1 import generation_pb2, studio_pb2, studio_pb2_grpc

from services.studio import domain, messages
from services.studio.domain import Character, MediaType, Problems, Project, SceneDescription, Shot
from services.studio.export.exporter import EpisodeExporter
from services.studio.generation import ShotGeneration
from services.studio.repository import StudioRepository
from services.studio.storage import ObjectStore

log = logging.getLogger("aigen.studio")

DEFAULT_PAGE = 50
MAX_PAGE = 200


def _id(value: str, field_name: str, resource: str) -> uuid.UUID:
    return domain.parse_id(value, field_name, resource)


def _ref(value: str, field_name: str = "id") -> str:
    if not value.strip():
        raise InvalidArgument.field(field_name, "required")
    return value.strip()


def _optional_setting(value: str) -> uuid.UUID | None:
    return _id(value, "setting_id", "setting") if value else None


def merge_scenes(
    current: tuple[SceneDescription, ...], changes: tuple[SceneDescription, ...], replace: bool
) -> tuple[SceneDescription, ...]:
    """Merging: a character's description is replaced, a new character appended; an empty
    description removes that character's entry."""
    if replace:
        return tuple(s for s in changes if s.description.strip())
    merged = {s.character_name.casefold(): s for s in current}
    for scene in changes:
        key = scene.character_name.casefold()
        if scene.description.strip():
            merged[key] = scene
        else:
            merged.pop(key, None)
    return tuple(merged.values())


class StudioService(studio_pb2_grpc.StudioServiceServicer):
    def __init__(
        self,
        repo: StudioRepository,
        generation: ShotGeneration,
        exporter: EpisodeExporter,
        store: ObjectStore,
    ) -> None:
        self.repo = repo
        self.generation = generation
        self.exporter = exporter
        self.store = store

    # --- projects -------------------------------------------------------------------------------

    async def CreateProject(
        self, request: studio_pb2.CreateProjectRequest, context: Any
    ) -> studio_pb2.Project:
        problems = Problems()
        slug = request.slug.strip()
        if problem := domain.slug_problem(slug):
            problems.add("slug", problem)
        problems.name(request.name, "name")
        problems.text(request.description, "description")
        problems.text(request.style_prompt, "style_prompt")
        domain.check_default_models(problems, request.default_models, "default_models", merging=False)
        problems.raise_if_any()
        project = await self.repo.create_project(
            {
                "slug": slug,
                "name": request.name.strip(),
                "description": request.description,
                "default_models": dict(request.default_models),
                "style_prompt": request.style_prompt,
            }
        )
        return messages.project(project)

    async def ListProjects(
        self, request: studio_pb2.ListProjectsRequest, context: Any
    ) -> studio_pb2.ListProjectsResponse:
        return studio_pb2.ListProjectsResponse(
            projects=[messages.project(p) for p in await self.repo.list_projects()]
        )

    async def GetProject(self, request: studio_pb2.GetProjectRequest, context: Any) -> studio_pb2.Project:
        return messages.project(await self.repo.get_project(_ref(request.id)))

    async def UpdateProject(
        self, request: studio_pb2.UpdateProjectRequest, context: Any
    ) -> studio_pb2.Project:
        problems = Problems()
        if request.HasField("name"):
            problems.name(request.name, "name")
        problems.text(request.description, "description")
        problems.text(request.style_prompt, "style_prompt")
        domain.check_default_models(problems, request.default_models, "default_models", merging=True)
        problems.raise_if_any()

        def decide(project: Project) -> dict[str, Any]:
            changes: dict[str, Any] = {}
            if request.HasField("name"):
                changes["name"] = request.name.strip()
            if request.HasField("description"):
                changes["description"] = request.description
            if request.HasField("style_prompt"):
                changes["style_prompt"] = request.style_prompt
            if request.default_models or request.replace_default_models:
                changes["default_models"] = domain.merge_default_models(
                    project.default_models, request.default_models, request.replace_default_models
                )
            return changes

        return messages.project(await self.repo.update_project(_ref(request.id), decide))

    async def DeleteProject(
        self, request: studio_pb2.DeleteProjectRequest, context: Any
    ) -> studio_pb2.DeleteResponse:
        project, exports = await self.repo.delete_project(_ref(request.id))
        await self._forget_exports(exports)
        return studio_pb2.DeleteResponse(id=str(project.id))

    async def _forget_exports(self, keys: list[str]) -> None:
        """Export files go with their episode. The records are gone already, so a file storage
        cannot delete now is only logged: it is unreachable garbage, not a broken reference."""
        for key in keys:
            try:
                await self.store.delete(key)
            except Exception as exc:
                log.warning("export %s stays in storage: %s: %s", key, type(exc).__name__, exc)

    # --- episodes -------------------------------------------------------------------------------

    @staticmethod
    def _episode_problems(problems: Problems, request: Any) -> None:
        problems.text(request.title, "title", domain.MAX_NAME)
        problems.text(request.synopsis, "synopsis")
        problems.text(request.script, "script", domain.MAX_SCRIPT)

    async def CreateEpisode(
        self, request: studio_pb2.CreateEpisodeRequest, context: Any
    ) -> studio_pb2.Episode:
        project_id = _id(request.project_id, "project_id", "project")
        problems = Problems()
        problems.number(request.number, "number")
        self._episode_problems(problems, request)
        problems.raise_if_any()
        episode = await self.repo.create_episode(
            project_id,
            request.number,
            {"title": request.title.strip(), "synopsis": request.synopsis, "script": request.script},
        )
        return messages.episode(episode)

    async def ListEpisodes(
        self, request: studio_pb2.ListEpisodesRequest, context: Any
    ) -> studio_pb2.ListEpisodesResponse:
        episodes = await self.repo.list_episodes(_id(request.project_id, "project_id", "project"))
        return studio_pb2.ListEpisodesResponse(episodes=[messages.episode(e) for e in episodes])

    async def GetEpisode(self, request: studio_pb2.GetEpisodeRequest, context: Any) -> studio_pb2.Episode:
        return messages.episode(await self.repo.get_episode(_id(request.id, "id", "episode")))

    async def UpdateEpisode(
        self, request: studio_pb2.UpdateEpisodeRequest, context: Any
    ) -> studio_pb2.Episode:
        episode_id = _id(request.id, "id", "episode")
        problems = Problems()
        if request.HasField("number"):
            problems.check(
                1 <= request.number <= domain.MAX_NUMBER, "number", f"must be from 1 to {domain.MAX_NUMBER}"
            )
        self._episode_problems(problems, request)
        problems.raise_if_any()
        changes = {
            name: getattr(request, name).strip() if name == "title" else getattr(request, name)
            for name in ("number", "title", "synopsis", "script")
            if request.HasField(name)
        }
        return messages.episode(await self.repo.update_episode(episode_id, changes))

    async def DeleteEpisode(
        self, request: studio_pb2.DeleteEpisodeRequest, context: Any
    ) -> studio_pb2.DeleteResponse:
        episode, exports = await self.repo.delete_episode(_id(request.id, "id", "episode"))
        await self._forget_exports(exports)
        return studio_pb2.DeleteResponse(id=str(episode.id))

    # --- shots ----------------------------------------------------------------------------------

    @staticmethod
    def _shot_problems(problems: Problems, request: Any) -> None:
        problems.text(request.title, "title", domain.MAX_NAME)
        problems.text(request.description, "description")
        problems.text(request.action, "action")
        problems.text(request.camera, "camera", domain.MAX_NAME)
        problems.duration(request.duration_seconds, "duration_seconds")
        domain.check_scene_descriptions(
            problems, messages.scenes_from(list(request.scene_descriptions)), "scene_descriptions"
        )

    async def CreateShot(self, request: studio_pb2.CreateShotRequest, context: Any) -> studio_pb2.Shot:
        episode_id = _id(request.episode_id, "episode_id", "episode")
        problems = Problems()
        problems.number(request.shot_number, "shot_number")
        self._shot_problems(problems, request)
        problems.raise_if_any()
        shot = await self.repo.create_shot(
            episode_id,
            request.shot_number,
            {
                "title": request.title.strip(),
                "description": request.description,
                "action": request.action,
                "camera": request.camera.strip(),
                "duration_seconds": request.duration_seconds,
                "scene_descriptions": messages.scenes_from(list(request.scene_descriptions)),
                "setting_id": _optional_setting(request.setting_id),
            },
        )
        return messages.shot(shot)

    async def ListShots(
        self, request: studio_pb2.ListShotsRequest, context: Any
    ) -> studio_pb2.ListShotsResponse:
        shots = await self.repo.list_shots(_id(request.episode_id, "episode_id", "episode"))
        return studio_pb2.ListShotsResponse(shots=[messages.shot(s) for s in shots])

    async def GetShot(self, request: studio_pb2.GetShotRequest, context: Any) -> studio_pb2.Shot:
        return messages.shot(await self.repo.get_shot(_id(request.id, "id", "shot")))

    async def UpdateShot(self, request: studio_pb2.UpdateShotRequest, context: Any) -> studio_pb2.Shot:
        shot_id = _id(request.id, "id", "shot")
        problems = Problems()
        if request.HasField("shot_number"):
            problems.check(
                1 <= request.shot_number <= domain.MAX_NUMBER,
                "shot_number",
                f"must be from 1 to {domain.MAX_NUMBER}",
            )
        self._shot_problems(problems, request)
        problems.raise_if_any()
        setting = _optional_setting(request.setting_id) if request.HasField("setting_id") else None
        scenes = messages.scenes_from(list(request.scene_descriptions))

        def decide(shot: Shot) -> dict[str, Any]:
            changes: dict[str, Any] = {}
            for name in ("shot_number", "title", "description", "action", "camera", "duration_seconds"):
                if request.HasField(name):
                    value = getattr(request, name)
                    changes[name] = value.strip() if name in ("title", "camera") else value
            if request.HasField("setting_id"):
                changes["setting_id"] = setting
            if scenes or request.replace_scene_descriptions:
                changes["scene_descriptions"] = merge_scenes(
                    shot.scene_descriptions, scenes, request.replace_scene_descriptions
                )
            return changes

        return messages.shot(await self.repo.update_shot(shot_id, decide))

    async def DeleteShot(
        self, request: studio_pb2.DeleteShotRequest, context: Any
    ) -> studio_pb2.DeleteResponse:
        shot = await self.repo.delete_shot(_id(request.id, "id", "shot"))
        return studio_pb2.DeleteResponse(id=str(shot.id))

    async def ReorderShots(
        self, request: studio_pb2.ReorderShotsRequest, context: Any
    ) -> studio_pb2.ListShotsResponse:
        episode_id = _id(request.episode_id, "episode_id", "episode")
        shots = await self.repo.reorder_shots(episode_id, list(request.shot_ids))
        return studio_pb2.ListShotsResponse(shots=[messages.shot(s) for s in shots])

    # --- characters -------------------------------------------------------------------------------

    async def CreateCharacter(
        self, request: studio_pb2.CreateCharacterRequest, context: Any
    ) -> studio_pb2.Character:
        project_id = _id(request.project_id, "project_id", "project")
        problems = Problems()
        problems.name(request.name, "name")
        problems.text(request.description, "description")
        domain.check_reference_images(problems, list(request.reference_images), "reference_images")
        problems.raise_if_any()
        character = await self.repo.create_character(
            project_id,
            {
                "name": request.name.strip(),
                "description": request.description,
                "reference_images": list(dict.fromkeys(request.reference_images)),
            },
        )
        return messages.character(character)

    async def ListCharacters(
        self, request: studio_pb2.ListCharactersRequest, context: Any
    ) -> studio_pb2.ListCharactersResponse:
        characters = await self.repo.list_characters(_id(request.project_id, "project_id", "project"))
        return studio_pb2.ListCharactersResponse(characters=[messages.character(c) for c in characters])

    async def GetCharacter(
        self, request: studio_pb2.GetCharacterRequest, context: Any
    ) -> studio_pb2.Character:
        return messages.character(await self.repo.get_character(_id(request.id, "id", "character")))

    async def UpdateCharacter(
        self, request: studio_pb2.UpdateCharacterRequest, context: Any
    ) -> studio_pb2.Character:
        character_id = _id(request.id, "id", "character")
        problems = Problems()
        if request.HasField("name"):
            problems.name(request.name, "name")
        problems.text(request.description, "description")
        domain.check_reference_images(problems, list(request.reference_images), "reference_images")
        problems.raise_if_any()

        def decide(character: Character) -> dict[str, Any]:
            changes: dict[str, Any] = {}
            if request.HasField("name"):
                changes["name"] = request.name.strip()
            if request.HasField("description"):
                changes["description"] = request.description
            if request.reference_images or request.replace_reference_images:
                base = [] if request.replace_reference_images else list(character.reference_images)
                images = list(dict.fromkeys([*base, *request.reference_images]))
                if len(images) > domain.MAX_REFERENCE_IMAGES:
                    raise InvalidArgument.field(
                        "reference_images", f"at most {domain.MAX_REFERENCE_IMAGES} reference images in all"
                    )
                changes["reference_images"] = images
            return changes

        return messages.character(await self.repo.update_character(character_id, decide))

    async def DeleteCharacter(
        self, request: studio_pb2.DeleteCharacterRequest, context: Any
    ) -> studio_pb2.DeleteResponse:
        character = await self.repo.delete_character(_id(request.id, "id", "character"))
        return studio_pb2.DeleteResponse(id=str(character.id))

    async def LinkCharacter(self, request: studio_pb2.LinkCharacterRequest, context: Any) -> studio_pb2.Shot:
        shot_id = _id(request.shot_id, "shot_id", "shot")
        character_id = _id(request.character_id, "character_id", "character")
        return messages.shot(await self.repo.link_character(shot_id, character_id, link=True))

    async def UnlinkCharacter(
        self, request: studio_pb2.UnlinkCharacterRequest, context: Any
    ) -> studio_pb2.Shot:
        shot_id = _id(request.shot_id, "shot_id", "shot")
        character_id = _id(request.character_id, "character_id", "character")
        return messages.shot(await self.repo.link_character(shot_id, character_id, link=False))

    # --- settings ---------------------------------------------------------------------------------

    @staticmethod
    def _setting_problems(problems: Problems, request: Any) -> None:
        problems.text(request.time_of_day, "time_of_day", domain.MAX_NAME)
        problems.text(request.mood, "mood", domain.MAX_NAME)
        problems.text(request.description, "description")

    async def CreateSetting(
        self, request: studio_pb2.CreateSettingRequest, context: Any
    ) -> studio_pb2.Setting:
        project_id = _id(request.project_id, "project_id", "project")
        problems = Problems()
        problems.name(request.location, "location")
        self._setting_problems(problems, request)
        problems.raise_if_any()
        fields = {
            "location": request.location.strip(),
            "time_of_day": request.time_of_day.strip(),
            "mood": request.mood.strip(),
            "description": request.description,
        }
        return messages.setting(await self.repo.create_setting(project_id, fields))

    async def ListSettings(
        self, request: studio_pb2.ListSettingsRequest, context: Any
    ) -> studio_pb2.ListSettingsResponse:
        settings = await self.repo.list_settings(_id(request.project_id, "project_id", "project"))
        return studio_pb2.ListSettingsResponse(settings=[messages.setting(s) for s in settings])

    async def GetSetting(self, request: studio_pb2.GetSettingRequest, context: Any) -> studio_pb2.Setting:
        return messages.setting(await self.repo.get_setting(_id(request.id, "id", "setting")))

    async def UpdateSetting(
        self, request: studio_pb2.UpdateSettingRequest, context: Any
    ) -> studio_pb2.Setting:
        setting_id = _id(request.id, "id", "setting")
        problems = Problems()
        if request.HasField("location"):
            problems.name(request.location, "location")
        self._setting_problems(problems, request)
        problems.raise_if_any()
        changes = {
            name: getattr(request, name) if name == "description" else getattr(request, name).strip()
            for name in ("location", "time_of_day", "mood", "description")
            if request.HasField(name)
        }
        return messages.setting(await self.repo.update_setting(setting_id, changes))

    async def DeleteSetting(
        self, request: studio_pb2.DeleteSettingRequest, context: Any
    ) -> studio_pb2.DeleteResponse:
        setting = await self.repo.delete_setting(_id(request.id, "id", "setting"))
        return studio_pb2.DeleteResponse(id=str(setting.id))

    # --- frames -----------------------------------------------------------------------------------

    async def CreateFrame(self, request: studio_pb2.CreateFrameRequest, context: Any) -> studio_pb2.Frame:
        shot_id = _id(request.shot_id, "shot_id", "shot")
        problems = Problems()
        media_type = messages.MEDIA_TYPES.get(request.media_type)
        problems.check(media_type is not None, "media_type", "must be IMAGE, VIDEO or AUDIO")
        if problem := domain.media_url_problem(request.url):
            problems.add("url", problem)
        problems.text(request.task_id, "task_id", domain.MAX_NAME)
        problems.raise_if_any()
        assert media_type is not None
        frame = await self.repo.create_frame(shot_id, media_type, request.url, request.task_id or None)
        return messages.frame(frame)

    async def ListFrames(
        self, request: studio_pb2.ListFramesRequest, context: Any
    ) -> studio_pb2.ListFramesResponse:
        frames = await self.repo.list_frames(_id(request.shot_id, "shot_id", "shot"))
        return studio_pb2.ListFramesResponse(frames=[messages.frame(f) for f in frames])

    async def UpdateFrame(self, request: studio_pb2.UpdateFrameRequest, context: Any) -> studio_pb2.Frame:
        frame_id = _id(request.id, "id", "frame")
        problems = Problems()
        changes: dict[str, Any] = {}
        if request.HasField("url"):
            if problem := domain.media_url_problem(request.url):
                problems.add("url", problem)
            # New media elsewhere: the stored object no longer is this frame's.
            changes.update(url=request.url, storage_key="")
        if request.HasField("frame_number"):
            problems.check(
                1 <= request.frame_number <= domain.MAX_NUMBER,
                "frame_number",
                f"must be from 1 to {domain.MAX_NUMBER}",
            )
            changes["frame_number"] = request.frame_number
        problems.raise_if_any()
        return messages.frame(await self.repo.update_frame(frame_id, changes))

    async def DeleteFrame(
        self, request: studio_pb2.DeleteFrameRequest, context: Any
    ) -> studio_pb2.DeleteResponse:
        frame = await self.repo.delete_frame(_id(request.id, "id", "frame"))
        return studio_pb2.DeleteResponse(id=str(frame.id))

    async def SelectFrame(self, request: studio_pb2.SelectFrameRequest, context: Any) -> studio_pb2.Frame:
        return messages.frame(await self.repo.select_frame(_id(request.id, "id", "frame")))

    # --- generation -------------------------------------------------------------------------------

    async def ComposePrompt(
        self, request: studio_pb2.ComposePromptRequest, context: Any
    ) -> studio_pb2.ComposePromptResponse:
        composed = await self.generation.compose(request)
        return studio_pb2.ComposePromptResponse(
            prompt=composed.prompt, reference_images=composed.reference_images
        )

    async def GenerateForShot(
        self, request: studio_pb2.GenerateForShotRequest, context: Any
    ) -> generation_pb2.Task:
        return await self.generation.generate(request)

    async def ShotTaskHistory(
        self, request: studio_pb2.ShotTaskHistoryRequest, context: Any
    ) -> generation_pb2.ListTasksResponse:
        shot_id = _id(request.shot_id, "shot_id", "shot")
        if not 0 <= request.page_size <= MAX_PAGE:
            raise InvalidArgument.field("page_size", f"must be from 1 to {MAX_PAGE} (0: {DEFAULT_PAGE})")
        views, token = await self.repo.task_history(
            shot_id, request.page_size or DEFAULT_PAGE, request.page_token
        )
        return generation_pb2.ListTasksResponse(
            tasks=[generation_pb2.Task.FromString(v) for v in views], next_page_token=token
        )

    # --- overview and cost ------------------------------------------------------------------------

    async def EpisodeOverview(
        self, request: studio_pb2.EpisodeOverviewRequest, context: Any
    ) -> studio_pb2.EpisodeOverviewResponse:
        episode_id = _id(request.episode_id, "episode_id", "episode")
        episode, shots, running = await self.repo.episode_summary(episode_id)
        cost = await self.repo.cost("episode_id", episode_id)
        overview = studio_pb2.EpisodeOverviewResponse(
            episode=messages.episode(episode), cost_usd=domain.money(cost.total), cost=messages.cost(cost)
        )
        for summary in shots:
            takes = summary.takes
            item = overview.shots.add(
                shot=messages.shot(takes.shot),
                frame_count=summary.frame_count,
                cost_usd=domain.money(summary.cost.total),
                running_tasks=[generation_pb2.Task.FromString(v) for v in running.get(takes.shot.id, [])],
            )
            if takes.picture is not None:
                item.selected_frame.CopyFrom(messages.frame(takes.picture))
            if takes.audio is not None:
                item.selected_audio.CopyFrom(messages.frame(takes.audio))
        # The animatic's rule, with a video's own length unknown here (it counts as a still).
        overview.total_duration_seconds = sum(
            domain.shot_duration(s.takes.shot, MediaType.IMAGE, None) for s in shots
        )
        return overview

    async def GetCost(self, request: studio_pb2.GetCostRequest, context: Any) -> studio_pb2.CostSummary:
        scope = request.WhichOneof("scope")
        if scope is None:
            raise InvalidArgument.field("scope", "name a shot_id, episode_id or project_id")
        raw = getattr(request, scope)
        if scope == "shot_id":
            scope_id = _id(raw, scope, "shot")
            await self.repo.get_shot(scope_id)
        elif scope == "episode_id":
            scope_id = _id(raw, scope, "episode")
            await self.repo.get_episode(scope_id)
        else:
            scope_id = (await self.repo.get_project(_ref(raw, scope))).id
        return messages.cost(await self.repo.cost(scope, scope_id))

    # --- exports ----------------------------------------------------------------------------------

    async def ExportEpisode(
        self, request: studio_pb2.ExportEpisodeRequest, context: Any
    ) -> studio_pb2.Export:
        episode_id = _id(request.episode_id, "episode_id", "episode")
        spec = domain.export_spec(request.kind, request.width, request.height, request.fps)
        return messages.export(await self.exporter.export(episode_id, spec))

    async def ListExports(
        self, request: studio_pb2.ListExportsRequest, context: Any
    ) -> studio_pb2.ListExportsResponse:
        exports = await self.repo.list_exports(_id(request.episode_id, "episode_id", "episode"))
        # Signed URLs expire: ask storage for fresh ones, keeping the recorded one if it has none.
        urls = await asyncio.gather(*(self.store.url(e.storage_key) for e in exports))
        return studio_pb2.ListExportsResponse(
            exports=[messages.export(e, url or e.url) for e, url in zip(exports, urls, strict=True)]
        )
