"""Generating from a shot: the prompt and references composed from the shot and its project, the
model's capabilities from the catalog, the task created by the dispatcher bound to the shot."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from aigen.errors import FailedPrecondition, InvalidArgument, NotFound, Violation
from aigen.grpcx.client import call
from aigen.tasks.views import PROTO_TO_STATUS
from aigen.v1 import catalog_pb2, catalog_pb2_grpc, generation_pb2, generation_pb2_grpc, studio_pb2

from services.studio import domain
from services.studio.domain import MediaType, Problems, PromptSources
from services.studio.messages import MEDIA_TYPES
from services.studio.repository import ShotScope, StudioRepository, TaskRow

DEFAULT_OWNER = "studio"
MAX_PROMPT = 20_000
MAX_OUTPUTS = 16


def task_row(task: generation_pb2.Task, shot_id: uuid.UUID) -> TaskRow:
    """Studio's record of a task, from the task as the dispatcher shows it."""
    status = PROTO_TO_STATUS.get(task.status)
    status_name = status.value if status is not None else "PENDING"
    charge = domain.usd(task.charge.usd) if task.HasField("charge") and task.charge.usd else None
    quoted, settled = domain.task_cost(status_name, domain.usd(task.quote.usd), charge)
    return TaskRow(
        task_id=task.id,
        shot_id=shot_id,
        version=task.version,
        status=status_name,
        deleted=task.HasField("deleted_at"),
        quoted=quoted,
        settled=settled,
        created_at=task.created_at.ToDatetime(tzinfo=UTC)
        if task.HasField("created_at")
        else datetime.now(UTC),
        view=task.SerializeToString(),
    )


@dataclass(frozen=True)
class Composed:
    prompt: str
    reference_images: list[str]


class ShotGeneration:
    def __init__(
        self,
        repo: StudioRepository,
        generation: generation_pb2_grpc.GenerationServiceStub,
        catalog: catalog_pb2_grpc.CatalogServiceStub,
    ) -> None:
        self.repo = repo
        self.generation = generation
        self.catalog = catalog

    async def _scope(self, raw_shot_id: str) -> ShotScope:
        shot_id = domain.parse_id(raw_shot_id, "shot_id", "shot")
        try:
            return await self.repo.shot_scope(shot_id)
        except NotFound:
            if await self.repo.shot_was_deleted(shot_id):
                raise FailedPrecondition(
                    f"shot {shot_id} was deleted",
                    [Violation("shot_id", "the shot was deleted")],
                    reason="SHOT_DELETED",
                ) from None
            raise

    async def _sources(self, scope: ShotScope) -> PromptSources:
        setting = await self.repo.find_setting(scope.shot.setting_id) if scope.shot.setting_id else None
        characters = await self.repo.characters_of_shot(scope.shot.id)
        return PromptSources(scope.project.style_prompt, setting, scope.shot, characters)

    async def compose(self, request: studio_pb2.ComposePromptRequest) -> Composed:
        scope = await self._scope(request.shot_id)
        output = MEDIA_TYPES.get(request.output_type, MediaType.IMAGE)
        sources = await self._sources(scope)
        return Composed(
            domain.compose_prompt(output, sources),
            domain.reference_images(sources.characters, domain.MAX_REFERENCE_IMAGES),
        )

    async def generate(self, request: studio_pb2.GenerateForShotRequest) -> generation_pb2.Task:
        scope = await self._scope(request.shot_id)
        problems = Problems()
        problems.text(request.prompt, "prompt", MAX_PROMPT)
        problems.check(
            0 <= request.number_of_outputs <= MAX_OUTPUTS,
            "number_of_outputs",
            f"must be from 1 to {MAX_OUTPUTS} (0: the model's default)",
        )
        domain.check_reference_images(problems, list(request.reference_images), "reference_images")
        problems.raise_if_any()
        wanted = MEDIA_TYPES.get(request.output_type)
        model_slug = request.model.strip() or self._default_model(scope, wanted)
        model: catalog_pb2.Model = await call(
            self.catalog.GetModelBySlug, catalog_pb2.GetModelBySlugRequest(slug=model_slug)
        )
        made = MEDIA_TYPES.get(model.output_type)
        if wanted is not None and made is not None and made is not wanted:
            raise InvalidArgument.field("model", f"{model_slug} makes {made.value}, not {wanted.value}")
        output = made or wanted or MediaType.IMAGE
        sources = await self._sources(scope)
        prompt = request.prompt.strip() or domain.compose_prompt(output, sources)
        accepts = model.input_images.max
        if request.reference_images:
            if len(request.reference_images) > accepts:
                raise InvalidArgument.field(
                    "reference_images", f"{model_slug} takes at most {accepts} input image(s)"
                )
            references = list(request.reference_images)
        else:
            references = domain.reference_images(sources.characters, accepts)
        task: generation_pb2.Task = await call(
            self.generation.Generate,
            generation_pb2.GenerateRequest(
                model=model_slug,
                prompt=prompt,
                input_images=references,
                number_of_outputs=request.number_of_outputs,
                parameters=request.parameters,
                shot_id=str(scope.shot.id),
                request_id=request.request_id,
                owner=request.owner or DEFAULT_OWNER,
            ),
        )
        # Seen at once in the shot's history and the episode overview, before its events arrive.
        await self.repo.upsert_task(task_row(task, scope.shot.id))
        return task

    @staticmethod
    def _default_model(scope: ShotScope, wanted: MediaType | None) -> str:
        if wanted is None:
            raise InvalidArgument.field("output_type", "required when no model is named")
        slug = scope.project.default_models.get(wanted.value, "")
        if not slug:
            raise FailedPrecondition(
                f"project {scope.project.slug} has no default {wanted.value} model; name a model",
                [Violation("model", f"no model named and no default {wanted.value} model in the project")],
                reason="NO_DEFAULT_MODEL",
            )
        return slug
