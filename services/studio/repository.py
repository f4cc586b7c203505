"""Studio's tables: each method is one transaction (or joins the caller's through `conn`).

Numbering and take selection happen under a row lock on the parent (project for episodes,
episode for shots, shot for frames), so concurrent creators never pick the same number and a
shot never ends up with two chosen frames in one slot.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from aigen.db.pool import Database
from aigen.errors import AlreadyExists, InvalidArgument, NotFound
from psycopg import errors as pg_errors
from psycopg import sql
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from services.studio import domain
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
    ShotTakes,
    Slot,
)

Conn = psycopg.AsyncConnection[TupleRow]
Changes = Mapping[str, Any]

_PROJECT = (
    "p.id, p.slug, p.name, p.description, p.default_models, p.style_prompt, p.created_at, p.updated_at, "
    "(SELECT count(*) FROM studio_episodes e WHERE e.project_id = p.id)"
)
_EPISODE = (
    "e.id, e.project_id, e.number, e.title, e.synopsis, e.script, e.created_at, e.updated_at, "
    "(SELECT count(*) FROM studio_shots s WHERE s.episode_id = e.id)"
)
_SHOT = (
    "s.id, s.episode_id, s.shot_number, s.position, s.title, s.description, s.action, s.camera, "
    "s.duration_seconds, s.scene_descriptions, s.setting_id, s.created_at, s.updated_at, "
    "ARRAY(SELECT c.character_id FROM studio_shot_characters c WHERE c.shot_id = s.id "
    "ORDER BY c.linked_at, c.character_id)"
)
_CHARACTER = "id, project_id, name, description, reference_images, created_at, updated_at"
_SETTING = "id, project_id, location, time_of_day, mood, description, created_at, updated_at"
_FRAME = "id, shot_id, frame_number, media_type, url, storage_key, task_id, selected, created_at"
_EXPORT = "id, episode_id, kind, storage_key, url, content_type, size, details, created_at"


def _project(row: TupleRow) -> Project:
    return Project(
        id=row[0],
        slug=row[1],
        name=row[2],
        description=row[3],
        default_models=dict(row[4] or {}),
        style_prompt=row[5],
        created_at=row[6],
        updated_at=row[7],
        episode_count=int(row[8]),
    )


def _episode(row: TupleRow) -> Episode:
    return Episode(
        id=row[0],
        project_id=row[1],
        number=row[2],
        title=row[3],
        synopsis=row[4],
        script=row[5],
        created_at=row[6],
        updated_at=row[7],
        shot_count=int(row[8]),
    )


def _shot(row: TupleRow) -> Shot:
    scenes = tuple(
        SceneDescription(s.get("character_name", ""), s.get("description", "")) for s in row[9] or []
    )
    return Shot(
        id=row[0],
        episode_id=row[1],
        shot_number=row[2],
        position=row[3],
        title=row[4],
        description=row[5],
        action=row[6],
        camera=row[7],
        duration_seconds=float(row[8]),
        scene_descriptions=scenes,
        setting_id=row[10],
        created_at=row[11],
        updated_at=row[12],
        character_ids=tuple(row[13] or ()),
    )


def _character(row: TupleRow) -> Character:
    return Character(row[0], row[1], row[2], row[3], tuple(row[4] or ()), row[5], row[6])


def _setting(row: TupleRow) -> Setting:
    return Setting(*row)


def _frame(row: TupleRow) -> Frame:
    return Frame(row[0], row[1], row[2], MediaType(row[3]), row[4], row[5], row[6], row[7], row[8])


def _export(row: TupleRow) -> ExportRecord:
    return ExportRecord(
        id=row[0],
        episode_id=row[1],
        kind=row[2],
        storage_key=row[3],
        url=row[4],
        content_type=row[5],
        size=int(row[6]),
        details=dict(row[7] or {}),
        created_at=row[8],
    )


def scenes_json(scenes: Sequence[SceneDescription]) -> Jsonb:
    return Jsonb([{"character_name": s.character_name, "description": s.description} for s in scenes])


@dataclass(frozen=True)
class ShotScope:
    """A shot with the episode and project it belongs to."""

    shot: Shot
    episode: Episode
    project: Project


@dataclass(frozen=True)
class TaskRow:
    task_id: str
    shot_id: uuid.UUID
    version: int
    status: str
    deleted: bool
    quoted: Decimal
    settled: Decimal
    created_at: datetime
    view: bytes


@dataclass(frozen=True)
class CostTotals:
    quoted: Decimal
    settled: Decimal
    tasks: int

    @property
    def total(self) -> Decimal:
        return self.quoted + self.settled


@dataclass(frozen=True)
class ShotSummary:
    takes: ShotTakes
    frame_count: int
    cost: CostTotals


def encode_cursor(created_at: datetime, task_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), task_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[datetime, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        at, task_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(at), str(task_id)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument.field("page_token", "not a token this service issued") from exc


def _violated(exc: pg_errors.UniqueViolation) -> str:
    return exc.diag.constraint_name or ""


class StudioRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        async with self.db.transaction() as conn:
            yield conn

    # --- helpers ------------------------------------------------------------------------------------

    @staticmethod
    async def _one(conn: Conn, query: str, params: Sequence[Any]) -> TupleRow | None:
        return await (await conn.execute(query, params)).fetchone()

    @staticmethod
    async def _all(conn: Conn, query: str, params: Sequence[Any] = ()) -> list[TupleRow]:
        return await (await conn.execute(query, params)).fetchall()

    @staticmethod
    async def _update(conn: Conn, table: str, row_id: uuid.UUID, changes: Changes) -> None:
        if not changes:
            return
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder()) for column in changes
        )
        query = sql.SQL("UPDATE {} SET {}, updated_at = now() WHERE id = %s").format(
            sql.Identifier(table), assignments
        )
        await conn.execute(query, [*changes.values(), row_id])

    # --- projects -------------------------------------------------------------------------------------

    async def create_project(self, project: Changes) -> Project:
        project_id = uuid.uuid4()
        try:
            async with self.db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO studio_projects (id, slug, name, description, default_models, style_prompt) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    (
                        project_id,
                        project["slug"],
                        project["name"],
                        project["description"],
                        Jsonb(dict(project["default_models"])),
                        project["style_prompt"],
                    ),
                )
        except pg_errors.UniqueViolation:
            raise AlreadyExists(
                "project", project["slug"], f"a project with slug {project['slug']!r} exists"
            ) from None
        return await self.get_project(str(project_id))

    async def find_project(self, ref: str, conn: Conn | None = None) -> Project | None:
        """By id or by slug."""
        try:
            key: uuid.UUID | None = uuid.UUID(ref)
        except ValueError:
            key = None
        query = f"SELECT {_PROJECT} FROM studio_projects p WHERE " + ("p.id = %s" if key else "p.slug = %s")
        params = (key if key else ref,)
        if conn is not None:
            row = await self._one(conn, query, params)
        else:
            async with self.db.connection() as own:
                row = await self._one(own, query, params)
        return _project(row) if row else None

    async def get_project(self, ref: str, conn: Conn | None = None) -> Project:
        project = await self.find_project(ref, conn)
        if project is None:
            raise NotFound("project", ref)
        return project

    async def list_projects(self) -> list[Project]:
        async with self.db.connection() as conn:
            rows = await self._all(
                conn, f"SELECT {_PROJECT} FROM studio_projects p ORDER BY p.created_at, p.id"
            )
        return [_project(r) for r in rows]

    async def update_project(self, ref: str, decide: Callable[[Project], Changes]) -> Project:
        async with self.db.transaction() as conn:
            project = await self.get_project(ref, conn)
            await conn.execute("SELECT 1 FROM studio_projects WHERE id = %s FOR UPDATE", (project.id,))
            project = await self.get_project(str(project.id), conn)
            changes = dict(decide(project))
            if "default_models" in changes:
                changes["default_models"] = Jsonb(dict(changes["default_models"]))
            await self._update(conn, "studio_projects", project.id, changes)
            return await self.get_project(str(project.id), conn)

    async def delete_project(self, ref: str) -> tuple[Project, list[str]]:
        """The project gone with everything in it; returns it and its exports' object keys."""
        async with self.db.transaction() as conn:
            project = await self.get_project(ref, conn)
            await conn.execute("SELECT 1 FROM studio_projects WHERE id = %s FOR UPDATE", (project.id,))
            keys = await self._all(
                conn,
                "SELECT x.storage_key FROM studio_exports x JOIN studio_episodes e ON e.id = x.episode_id "
                "WHERE e.project_id = %s",
                (project.id,),
            )
            await conn.execute(
                "INSERT INTO studio_deleted_shots (id) SELECT s.id FROM studio_shots s "
                "JOIN studio_episodes e ON e.id = s.episode_id WHERE e.project_id = %s "
                "ON CONFLICT DO NOTHING",
                (project.id,),
            )
            await conn.execute("DELETE FROM studio_tasks WHERE project_id = %s", (project.id,))
            await conn.execute("DELETE FROM studio_projects WHERE id = %s", (project.id,))
            return project, [k[0] for k in keys]

    # --- episodes -----------------------------------------------------------------------------------

    async def create_episode(self, project_id: uuid.UUID, number: int, fields: Changes) -> Episode:
        episode_id = uuid.uuid4()
        try:
            async with self.db.transaction() as conn:
                locked = await self._one(
                    conn, "SELECT id FROM studio_projects WHERE id = %s FOR UPDATE", (project_id,)
                )
                if locked is None:
                    raise NotFound("project", str(project_id))
                if number == 0:
                    rows = await self._all(
                        conn, "SELECT number FROM studio_episodes WHERE project_id = %s", (project_id,)
                    )
                    number = domain.next_number(r[0] for r in rows)
                await conn.execute(
                    "INSERT INTO studio_episodes (id, project_id, number, title, synopsis, script) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
                    (episode_id, project_id, number, fields["title"], fields["synopsis"], fields["script"]),
                )
        except pg_errors.UniqueViolation:
            raise AlreadyExists(
                "episode", str(number), f"the project already has an episode {number}"
            ) from None
        return await self.get_episode(episode_id)

    async def get_episode(self, episode_id: uuid.UUID, conn: Conn | None = None) -> Episode:
        query = f"SELECT {_EPISODE} FROM studio_episodes e WHERE e.id = %s"
        if conn is not None:
            row = await self._one(conn, query, (episode_id,))
        else:
            async with self.db.connection() as own:
                row = await self._one(own, query, (episode_id,))
        if row is None:
            raise NotFound("episode", str(episode_id))
        return _episode(row)

    async def list_episodes(self, project_id: uuid.UUID) -> list[Episode]:
        async with self.db.connection() as conn:
            await self.get_project(str(project_id), conn)
            rows = await self._all(
                conn,
                f"SELECT {_EPISODE} FROM studio_episodes e WHERE e.project_id = %s ORDER BY e.number",
                (project_id,),
            )
        return [_episode(r) for r in rows]

    async def update_episode(self, episode_id: uuid.UUID, changes: Changes) -> Episode:
        try:
            async with self.db.transaction() as conn:
                await self.get_episode(episode_id, conn)
                await self._update(conn, "studio_episodes", episode_id, changes)
                return await self.get_episode(episode_id, conn)
        except pg_errors.UniqueViolation:
            number = changes.get("number")
            raise AlreadyExists(
                "episode", str(number), f"the project already has an episode {number}"
            ) from None

    async def delete_episode(self, episode_id: uuid.UUID) -> tuple[Episode, list[str]]:
        """The episode gone with its shots and exports; returns it and its exports' object keys."""
        async with self.db.transaction() as conn:
            episode = await self.get_episode(episode_id, conn)
            await conn.execute("SELECT 1 FROM studio_episodes WHERE id = %s FOR UPDATE", (episode_id,))
            keys = await self._all(
                conn, "SELECT storage_key FROM studio_exports WHERE episode_id = %s", (episode_id,)
            )
            await conn.execute(
                "INSERT INTO studio_deleted_shots (id) SELECT id FROM studio_shots WHERE episode_id = %s "
                "ON CONFLICT DO NOTHING",
                (episode_id,),
            )
            await conn.execute("DELETE FROM studio_tasks WHERE episode_id = %s", (episode_id,))
            await conn.execute("DELETE FROM studio_episodes WHERE id = %s", (episode_id,))
            return episode, [k[0] for k in keys]

    # --- shots --------------------------------------------------------------------------------------

    async def _check_setting(self, conn: Conn, setting_id: uuid.UUID | None, project_id: uuid.UUID) -> None:
        if setting_id is None:
            return
        row = await self._one(
            conn, "SELECT 1 FROM studio_settings WHERE id = %s AND project_id = %s", (setting_id, project_id)
        )
        if row is None:
            raise NotFound("setting", str(setting_id), f"setting {str(setting_id)!r} is not in this project")

    async def create_shot(self, episode_id: uuid.UUID, number: int, fields: Changes) -> Shot:
        shot_id = uuid.uuid4()
        try:
            async with self.db.transaction() as conn:
                locked = await self._one(
                    conn, "SELECT project_id FROM studio_episodes WHERE id = %s FOR UPDATE", (episode_id,)
                )
                if locked is None:
                    raise NotFound("episode", str(episode_id))
                await self._check_setting(conn, fields["setting_id"], locked[0])
                rows = await self._all(
                    conn,
                    "SELECT shot_number, position FROM studio_shots WHERE episode_id = %s",
                    (episode_id,),
                )
                if number == 0:
                    number = domain.next_number(r[0] for r in rows)
                position = domain.next_number(r[1] for r in rows)
                await conn.execute(
                    "INSERT INTO studio_shots (id, episode_id, shot_number, position, title, description, "
                    "action, camera, duration_seconds, scene_descriptions, setting_id) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (
                        shot_id,
                        episode_id,
                        number,
                        position,
                        fields["title"],
                        fields["description"],
                        fields["action"],
                        fields["camera"],
                        fields["duration_seconds"],
                        scenes_json(fields["scene_descriptions"]),
                        fields["setting_id"],
                    ),
                )
        except pg_errors.UniqueViolation:
            raise AlreadyExists("shot", str(number), f"the episode already has a shot {number}") from None
        return await self.get_shot(shot_id)

    async def find_shot(self, shot_id: uuid.UUID, conn: Conn | None = None) -> Shot | None:
        query = f"SELECT {_SHOT} FROM studio_shots s WHERE s.id = %s"
        if conn is not None:
            row = await self._one(conn, query, (shot_id,))
        else:
            async with self.db.connection() as own:
                row = await self._one(own, query, (shot_id,))
        return _shot(row) if row else None

    async def get_shot(self, shot_id: uuid.UUID, conn: Conn | None = None) -> Shot:
        shot = await self.find_shot(shot_id, conn)
        if shot is None:
            raise NotFound("shot", str(shot_id))
        return shot

    async def shot_was_deleted(self, shot_id: uuid.UUID) -> bool:
        async with self.db.connection() as conn:
            return (
                await self._one(conn, "SELECT 1 FROM studio_deleted_shots WHERE id = %s", (shot_id,))
                is not None
            )

    async def shot_scope(self, shot_id: uuid.UUID, conn: Conn | None = None) -> ShotScope:
        if conn is None:
            async with self.db.connection() as own:
                return await self.shot_scope(shot_id, own)
        shot = await self.get_shot(shot_id, conn)
        episode = await self.get_episode(shot.episode_id, conn)
        project = await self.get_project(str(episode.project_id), conn)
        return ShotScope(shot, episode, project)

    async def list_shots(self, episode_id: uuid.UUID, conn: Conn | None = None) -> list[Shot]:
        if conn is None:
            async with self.db.connection() as own:
                return await self.list_shots(episode_id, own)
        await self.get_episode(episode_id, conn)
        rows = await self._all(
            conn,
            f"SELECT {_SHOT} FROM studio_shots s WHERE s.episode_id = %s ORDER BY s.position",
            (episode_id,),
        )
        return [_shot(r) for r in rows]

    async def update_shot(self, shot_id: uuid.UUID, decide: Callable[[Shot], Changes]) -> Shot:
        number: object = None
        try:
            async with self.db.transaction() as conn:
                await conn.execute("SELECT 1 FROM studio_shots WHERE id = %s FOR UPDATE", (shot_id,))
                scope = await self.shot_scope(shot_id, conn)
                changes = dict(decide(scope.shot))
                number = changes.get("shot_number")
                if changes.get("setting_id") is not None:
                    await self._check_setting(conn, changes["setting_id"], scope.project.id)
                if "scene_descriptions" in changes:
                    changes["scene_descriptions"] = scenes_json(changes["scene_descriptions"])
                await self._update(conn, "studio_shots", shot_id, changes)
                return await self.get_shot(shot_id, conn)
        except pg_errors.UniqueViolation:
            raise AlreadyExists("shot", str(number), f"the episode already has a shot {number}") from None

    async def delete_shot(self, shot_id: uuid.UUID) -> Shot:
        async with self.db.transaction() as conn:
            shot = await self.get_shot(shot_id, conn)
            await conn.execute(
                "INSERT INTO studio_deleted_shots (id) VALUES (%s) ON CONFLICT DO NOTHING", (shot_id,)
            )
            await conn.execute("DELETE FROM studio_shots WHERE id = %s", (shot_id,))
            return shot

    async def reorder_shots(self, episode_id: uuid.UUID, requested: Sequence[str]) -> list[Shot]:
        async with self.db.transaction() as conn:
            if (
                await self._one(conn, "SELECT 1 FROM studio_episodes WHERE id = %s FOR UPDATE", (episode_id,))
                is None
            ):
                raise NotFound("episode", str(episode_id))
            current = [
                r[0]
                for r in await self._all(
                    conn, "SELECT id FROM studio_shots WHERE episode_id = %s ORDER BY position", (episode_id,)
                )
            ]
            order = domain.reorder(current, requested)
            await conn.execute(
                "UPDATE studio_shots s SET position = o.position, updated_at = now() "
                "FROM unnest(%s::uuid[]) WITH ORDINALITY AS o(id, position) WHERE s.id = o.id",
                (order,),
            )
            return await self.list_shots(episode_id, conn)

    # --- characters ---------------------------------------------------------------------------------

    async def create_character(self, project_id: uuid.UUID, fields: Changes) -> Character:
        character_id = uuid.uuid4()
        try:
            async with self.db.transaction() as conn:
                await self.get_project(str(project_id), conn)
                await conn.execute(
                    "INSERT INTO studio_characters (id, project_id, name, description, reference_images) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    (
                        character_id,
                        project_id,
                        fields["name"],
                        fields["description"],
                        list(fields["reference_images"]),
                    ),
                )
        except pg_errors.UniqueViolation:
            raise AlreadyExists(
                "character", fields["name"], f"the project has a character named {fields['name']!r}"
            ) from None
        return await self.get_character(character_id)

    async def get_character(self, character_id: uuid.UUID, conn: Conn | None = None) -> Character:
        query = f"SELECT {_CHARACTER} FROM studio_characters WHERE id = %s"
        if conn is not None:
            row = await self._one(conn, query, (character_id,))
        else:
            async with self.db.connection() as own:
                row = await self._one(own, query, (character_id,))
        if row is None:
            raise NotFound("character", str(character_id))
        return _character(row)

    async def list_characters(self, project_id: uuid.UUID) -> list[Character]:
        async with self.db.connection() as conn:
            await self.get_project(str(project_id), conn)
            rows = await self._all(
                conn,
                f"SELECT {_CHARACTER} FROM studio_characters WHERE project_id = %s ORDER BY name",
                (project_id,),
            )
        return [_character(r) for r in rows]

    async def characters_of_shot(self, shot_id: uuid.UUID, conn: Conn | None = None) -> list[Character]:
        query = (
            "SELECT c.id, c.project_id, c.name, c.description, c.reference_images, c.created_at, "
            "c.updated_at "
            "FROM studio_shot_characters l JOIN studio_characters c ON c.id = l.character_id "
            "WHERE l.shot_id = %s ORDER BY l.linked_at, c.id"
        )
        if conn is not None:
            rows = await self._all(conn, query, (shot_id,))
        else:
            async with self.db.connection() as own:
                rows = await self._all(own, query, (shot_id,))
        return [_character(r) for r in rows]

    async def update_character(
        self, character_id: uuid.UUID, decide: Callable[[Character], Changes]
    ) -> Character:
        changes: Changes = {}
        try:
            async with self.db.transaction() as conn:
                await conn.execute(
                    "SELECT 1 FROM studio_characters WHERE id = %s FOR UPDATE", (character_id,)
                )
                changes = dict(decide(await self.get_character(character_id, conn)))
                if "reference_images" in changes:
                    changes = {**changes, "reference_images": list(changes["reference_images"])}
                await self._update(conn, "studio_characters", character_id, changes)
                return await self.get_character(character_id, conn)
        except pg_errors.UniqueViolation:
            name = str(changes.get("name"))
            raise AlreadyExists("character", name, f"the project has a character named {name!r}") from None

    async def delete_character(self, character_id: uuid.UUID) -> Character:
        async with self.db.transaction() as conn:
            character = await self.get_character(character_id, conn)
            await conn.execute("DELETE FROM studio_characters WHERE id = %s", (character_id,))
            return character

    async def link_character(self, shot_id: uuid.UUID, character_id: uuid.UUID, *, link: bool) -> Shot:
        async with self.db.transaction() as conn:
            scope = await self.shot_scope(shot_id, conn)
            row = await self._one(
                conn,
                "SELECT 1 FROM studio_characters WHERE id = %s AND project_id = %s",
                (character_id, scope.project.id),
            )
            if row is None:
                raise NotFound(
                    "character", str(character_id), f"character {str(character_id)!r} is not in this project"
                )
            if link:
                await conn.execute(
                    "INSERT INTO studio_shot_characters (shot_id, character_id) VALUES (%s, %s) "
                    "ON CONFLICT DO NOTHING",
                    (shot_id, character_id),
                )
            else:
                await conn.execute(
                    "DELETE FROM studio_shot_characters WHERE shot_id = %s AND character_id = %s",
                    (shot_id, character_id),
                )
            return await self.get_shot(shot_id, conn)

    # --- settings -----------------------------------------------------------------------------------

    async def create_setting(self, project_id: uuid.UUID, fields: Changes) -> Setting:
        setting_id = uuid.uuid4()
        async with self.db.transaction() as conn:
            await self.get_project(str(project_id), conn)
            await conn.execute(
                "INSERT INTO studio_settings (id, project_id, location, time_of_day, mood, description) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    setting_id,
                    project_id,
                    fields["location"],
                    fields["time_of_day"],
                    fields["mood"],
                    fields["description"],
                ),
            )
            return await self.get_setting(setting_id, conn)

    async def find_setting(self, setting_id: uuid.UUID, conn: Conn | None = None) -> Setting | None:
        query = f"SELECT {_SETTING} FROM studio_settings WHERE id = %s"
        if conn is not None:
            row = await self._one(conn, query, (setting_id,))
        else:
            async with self.db.connection() as own:
                row = await self._one(own, query, (setting_id,))
        return _setting(row) if row else None

    async def get_setting(self, setting_id: uuid.UUID, conn: Conn | None = None) -> Setting:
        setting = await self.find_setting(setting_id, conn)
        if setting is None:
            raise NotFound("setting", str(setting_id))
        return setting

    async def list_settings(self, project_id: uuid.UUID) -> list[Setting]:
        async with self.db.connection() as conn:
            await self.get_project(str(project_id), conn)
            rows = await self._all(
                conn,
                f"SELECT {_SETTING} FROM studio_settings WHERE project_id = %s ORDER BY created_at, id",
                (project_id,),
            )
        return [_setting(r) for r in rows]

    async def update_setting(self, setting_id: uuid.UUID, changes: Changes) -> Setting:
        async with self.db.transaction() as conn:
            await self.get_setting(setting_id, conn)
            await self._update(conn, "studio_settings", setting_id, changes)
            return await self.get_setting(setting_id, conn)

    async def delete_setting(self, setting_id: uuid.UUID) -> Setting:
        async with self.db.transaction() as conn:
            setting = await self.get_setting(setting_id, conn)
            await conn.execute("DELETE FROM studio_settings WHERE id = %s", (setting_id,))
            return setting

    # --- frames -------------------------------------------------------------------------------------

    async def add_frames(
        self,
        conn: Conn,
        shot_id: uuid.UUID,
        media: Sequence[tuple[MediaType, str, str]],
        task_id: str | None,
    ) -> list[Frame]:
        """New frames (media type, url, storage key) numbered after the shot's existing ones; the
        first of each slot is selected when the shot has no chosen frame there. No shot: none."""
        if await self._one(conn, "SELECT 1 FROM studio_shots WHERE id = %s FOR UPDATE", (shot_id,)) is None:
            return []
        numbers = await self._all(
            conn, "SELECT frame_number FROM studio_frames WHERE shot_id = %s", (shot_id,)
        )
        first = domain.next_number(r[0] for r in numbers)
        selected_slots = [
            Slot(r[0])
            for r in await self._all(
                conn, "SELECT DISTINCT slot FROM studio_frames WHERE shot_id = %s AND selected", (shot_id,)
            )
        ]
        flags = domain.auto_selection(selected_slots, [m for m, _, _ in media])
        frames = []
        for i, ((media_type, url, key), selected) in enumerate(zip(media, flags, strict=True)):
            row = await self._one(
                conn,
                "INSERT INTO studio_frames (id, shot_id, frame_number, media_type, url, storage_key, "
                f"task_id, selected) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {_FRAME}",
                (uuid.uuid4(), shot_id, first + i, media_type.value, url, key, task_id, selected),
            )
            assert row is not None
            frames.append(_frame(row))
        return frames

    async def create_frame(
        self, shot_id: uuid.UUID, media_type: MediaType, url: str, task_id: str | None
    ) -> Frame:
        async with self.db.transaction() as conn:
            frames = await self.add_frames(conn, shot_id, [(media_type, url, "")], task_id)
            if not frames:
                raise NotFound("shot", str(shot_id))
            return frames[0]

    async def get_frame(self, frame_id: uuid.UUID, conn: Conn | None = None) -> Frame:
        query = f"SELECT {_FRAME} FROM studio_frames WHERE id = %s"
        if conn is not None:
            row = await self._one(conn, query, (frame_id,))
        else:
            async with self.db.connection() as own:
                row = await self._one(own, query, (frame_id,))
        if row is None:
            raise NotFound("frame", str(frame_id))
        return _frame(row)

    async def list_frames(self, shot_id: uuid.UUID) -> list[Frame]:
        async with self.db.connection() as conn:
            await self.get_shot(shot_id, conn)
            rows = await self._all(
                conn,
                f"SELECT {_FRAME} FROM studio_frames WHERE shot_id = %s ORDER BY frame_number",
                (shot_id,),
            )
        return [_frame(r) for r in rows]

    async def update_frame(self, frame_id: uuid.UUID, changes: Changes) -> Frame:
        try:
            async with self.db.transaction() as conn:
                await self.get_frame(frame_id, conn)
                if changes:
                    assignments = sql.SQL(", ").join(
                        sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder()) for c in changes
                    )
                    await conn.execute(
                        sql.SQL("UPDATE studio_frames SET {} WHERE id = %s").format(assignments),
                        [*changes.values(), frame_id],
                    )
                return await self.get_frame(frame_id, conn)
        except pg_errors.UniqueViolation:
            number = changes.get("frame_number")
            raise AlreadyExists("frame", str(number), f"the shot already has a frame {number}") from None

    async def delete_frame(self, frame_id: uuid.UUID) -> Frame:
        async with self.db.transaction() as conn:
            frame = await self.get_frame(frame_id, conn)
            await conn.execute("DELETE FROM studio_frames WHERE id = %s", (frame_id,))
            return frame

    async def select_frame(self, frame_id: uuid.UUID) -> Frame:
        async with self.db.transaction() as conn:
            frame = await self.get_frame(frame_id, conn)
            await conn.execute("SELECT 1 FROM studio_shots WHERE id = %s FOR UPDATE", (frame.shot_id,))
            await conn.execute(
                "UPDATE studio_frames SET selected = false "
                "WHERE shot_id = %s AND slot = %s AND selected AND id <> %s",
                (frame.shot_id, frame.slot.value, frame_id),
            )
            await conn.execute("UPDATE studio_frames SET selected = true WHERE id = %s", (frame_id,))
            return await self.get_frame(frame_id, conn)

    async def unlink_task(self, conn: Conn, task_id: str) -> int:
        cursor = await conn.execute("UPDATE studio_frames SET task_id = NULL WHERE task_id = %s", (task_id,))
        return cursor.rowcount

    # --- the task read model ----------------------------------------------------------------------

    async def known_task_shot(self, task_id: str) -> uuid.UUID | None:
        async with self.db.connection() as conn:
            row = await self._one(conn, "SELECT shot_id FROM studio_tasks WHERE task_id = %s", (task_id,))
        return row[0] if row else None

    async def upsert_task(self, row: TaskRow, conn: Conn | None = None) -> None:
        """Insert, or replace when `row` is a later version: events may arrive in any order."""
        if conn is None:
            async with self.db.transaction() as own:
                await self.upsert_task(row, own)
            return
        await conn.execute(
            """
            INSERT INTO studio_tasks (task_id, shot_id, episode_id, project_id, version, status, deleted,
                                      quoted_usd, settled_usd, created_at, view)
            SELECT %(task)s, %(shot)s, e.id, e.project_id, %(version)s, %(status)s, %(deleted)s,
                   %(quoted)s, %(settled)s, %(created)s, %(view)s
            FROM (SELECT 1) one
            LEFT JOIN studio_shots s ON s.id = %(shot)s
            LEFT JOIN studio_episodes e ON e.id = s.episode_id
            ON CONFLICT (task_id) DO UPDATE SET
                version = excluded.version, status = excluded.status, deleted = excluded.deleted,
                quoted_usd = excluded.quoted_usd, settled_usd = excluded.settled_usd, view = excluded.view
            WHERE studio_tasks.version < excluded.version
            """,
            {
                "task": row.task_id,
                "shot": row.shot_id,
                "version": row.version,
                "status": row.status,
                "deleted": row.deleted,
                "quoted": row.quoted,
                "settled": row.settled,
                "created": row.created_at,
                "view": row.view,
            },
        )

    async def task_history(
        self, shot_id: uuid.UUID, page_size: int, page_token: str
    ) -> tuple[list[bytes], str]:
        after = decode_cursor(page_token) if page_token else None
        async with self.db.connection() as conn:
            await self.get_shot(shot_id, conn)
            if after is None:
                rows = await self._all(
                    conn,
                    "SELECT view, created_at, task_id FROM studio_tasks WHERE shot_id = %s AND NOT deleted "
                    "ORDER BY created_at DESC, task_id DESC LIMIT %s",
                    (shot_id, page_size + 1),
                )
            else:
                rows = await self._all(
                    conn,
                    "SELECT view, created_at, task_id FROM studio_tasks WHERE shot_id = %s AND NOT deleted "
                    "AND (created_at, task_id) < (%s, %s) ORDER BY created_at DESC, task_id DESC LIMIT %s",
                    (shot_id, after[0], after[1], page_size + 1),
                )
        token = encode_cursor(rows[page_size - 1][1], rows[page_size - 1][2]) if len(rows) > page_size else ""
        return [bytes(r[0]) for r in rows[:page_size]], token

    async def cost(self, column: str, scope_id: uuid.UUID, conn: Conn | None = None) -> CostTotals:
        if column not in ("shot_id", "episode_id", "project_id"):
            raise ValueError(column)
        query = sql.SQL(
            "SELECT coalesce(sum(quoted_usd), 0), coalesce(sum(settled_usd), 0), count(*) "
            "FROM studio_tasks WHERE {} = %s"
        ).format(sql.Identifier(column))
        if conn is None:
            async with self.db.connection() as own:
                row = await (await own.execute(query, (scope_id,))).fetchone()
        else:
            row = await (await conn.execute(query, (scope_id,))).fetchone()
        assert row is not None
        return CostTotals(Decimal(row[0]), Decimal(row[1]), int(row[2]))

    # --- episode views ------------------------------------------------------------------------------

    async def episode_takes(self, episode_id: uuid.UUID, conn: Conn | None = None) -> list[ShotTakes]:
        """The episode's shots in order, each with its chosen picture and sound."""
        if conn is None:
            async with self.db.connection() as own:
                return await self.episode_takes(episode_id, own)
        shots = await self.list_shots(episode_id, conn)
        rows = await self._all(
            conn,
            f"SELECT {_FRAME} FROM studio_frames WHERE selected AND shot_id = ANY(%s)",
            ([s.id for s in shots],),
        )
        chosen = {(f.shot_id, f.slot): f for f in map(_frame, rows)}
        return [ShotTakes(s, chosen.get((s.id, Slot.PICTURE)), chosen.get((s.id, Slot.AUDIO))) for s in shots]

    async def episode_summary(
        self, episode_id: uuid.UUID
    ) -> tuple[Episode, list[ShotSummary], dict[uuid.UUID, list[bytes]]]:
        """Shots in order with their chosen takes, frame counts and cost; running tasks per shot."""
        async with self.db.connection() as conn:
            episode = await self.get_episode(episode_id, conn)
            takes = await self.episode_takes(episode_id, conn)
            ids = [t.shot.id for t in takes]
            counts = {
                r[0]: int(r[1])
                for r in await self._all(
                    conn,
                    "SELECT shot_id, count(*) FROM studio_frames WHERE shot_id = ANY(%s) GROUP BY shot_id",
                    (ids,),
                )
            }
            costs = {
                r[0]: CostTotals(Decimal(r[1]), Decimal(r[2]), int(r[3]))
                for r in await self._all(
                    conn,
                    "SELECT shot_id, sum(quoted_usd), sum(settled_usd), count(*) FROM studio_tasks "
                    "WHERE shot_id = ANY(%s) GROUP BY shot_id",
                    (ids,),
                )
            }
            running: dict[uuid.UUID, list[bytes]] = {}
            for shot_id, view in await self._all(
                conn,
                "SELECT shot_id, view FROM studio_tasks WHERE shot_id = ANY(%s) AND NOT deleted "
                "AND status = ANY(%s) ORDER BY created_at",
                (ids, sorted(domain.RUNNING)),
            ):
                running.setdefault(shot_id, []).append(bytes(view))
        empty = CostTotals(Decimal(0), Decimal(0), 0)
        summaries = [ShotSummary(t, counts.get(t.shot.id, 0), costs.get(t.shot.id, empty)) for t in takes]
        return episode, summaries, running

    # --- exports ------------------------------------------------------------------------------------

    async def add_export(self, record: ExportRecord) -> ExportRecord:
        async with self.db.transaction() as conn:
            row = await self._one(
                conn,
                f"INSERT INTO studio_exports ({_EXPORT}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
                f"RETURNING {_EXPORT}",
                (
                    record.id,
                    record.episode_id,
                    record.kind,
                    record.storage_key,
                    record.url,
                    record.content_type,
                    record.size,
                    Jsonb(dict(record.details)),
                    record.created_at,
                ),
            )
            assert row is not None
            return _export(row)

    async def list_exports(self, episode_id: uuid.UUID) -> list[ExportRecord]:
        async with self.db.connection() as conn:
            await self.get_episode(episode_id, conn)
            rows = await self._all(
                conn,
                f"SELECT {_EXPORT} FROM studio_exports WHERE episode_id = %s ORDER BY created_at DESC, id",
                (episode_id,),
            )
        return [_export(r) for r in rows]
