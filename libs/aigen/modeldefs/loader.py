"""Loading model definitions into a Catalog: the packaged files plus operators' extra directories.

Every problem in every file is collected and reported at once, each with its file, the platform,
provider or model it is in, the place inside it and the reason, so a bad definition stops the
start-up with a message that says exactly what to fix. Nothing partial is ever returned.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from aigen.modeldefs.checks import check_model
from aigen.modeldefs.schema import DefinitionFile, ModelDef, PlatformDef, ProviderDef
from aigen.modeldefs.yamlfile import YamlError, parse_yaml

# Extra definition directories, separated like PATH (os.pathsep).
EXTRA_DIRS_ENV = "AIGEN_MODEL_DEFINITIONS"
SUFFIXES = (".yaml", ".yml")

Kind = Literal["platform", "provider", "model"]


@dataclass(frozen=True)
class DefinitionProblem:
    file: str
    reason: str
    kind: Kind | None = None  # what the problem is in, when it is in one entry
    slug: str | None = None
    field: str | None = None  # where inside that entry: "pricing.expr", "fields[size].default"

    @property
    def model(self) -> str | None:
        return self.slug if self.kind == "model" else None

    def __str__(self) -> str:
        parts = [self.file]
        if self.kind:
            parts.append(f"{self.kind} {self.slug or '(no slug)'}")
        if self.field:
            parts.append(self.field)
        return ": ".join(parts) + f": {self.reason}"


class DefinitionError(ValueError):
    def __init__(self, problems: Iterable[DefinitionProblem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        count = len(self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in model definitions:\n{lines}")


class UnknownModelError(LookupError):
    def __init__(self, slug: str, known: Iterable[str]) -> None:
        close = difflib.get_close_matches(slug, list(known), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        super().__init__(f"no model {slug!r} is defined{hint}")
        self.slug = slug


@dataclass(frozen=True)
class Catalog:
    platforms: Mapping[str, PlatformDef]
    providers: Mapping[str, ProviderDef]
    models: Mapping[str, ModelDef]
    # "kind:slug" → the file that defines it, for messages that send an operator to the source.
    sources: Mapping[str, str] = field(default_factory=dict)

    def model(self, slug: str) -> ModelDef:
        try:
            return self.models[slug]
        except KeyError:
            raise UnknownModelError(slug, self.models) from None

    def provider_of(self, model: ModelDef | str) -> ProviderDef:
        definition = self.model(model) if isinstance(model, str) else model
        return self.providers[definition.provider]

    def platform_of(self, provider: ProviderDef | str) -> PlatformDef:
        definition = self.providers[provider] if isinstance(provider, str) else provider
        return self.platforms[definition.platform]

    def models_of(self, provider: str) -> list[ModelDef]:
        return sorted(
            (m for m in self.models.values() if m.provider == provider), key=lambda m: (m.sort_order, m.slug)
        )

    def source_of(self, kind: Kind, slug: str) -> str | None:
        return self.sources.get(f"{kind}:{slug}")


@cache
def packaged_catalog() -> Catalog:
    """The definitions shipped with the code, loaded once per process."""
    return build_catalog(packaged_sources())


def load_catalog(extra_dirs: Iterable[str | os.PathLike[str]] = ()) -> Catalog:
    """The packaged definitions plus every definition file in `extra_dirs` (read afresh)."""
    dirs = [Path(d) for d in extra_dirs]
    if not dirs:
        return packaged_catalog()
    sources = list(packaged_sources())
    problems: list[DefinitionProblem] = []
    for directory in dirs:
        if not directory.is_dir():
            problems.append(DefinitionProblem(str(directory), "is not a directory of definition files"))
            continue
        sources += [(str(p), _read(p)) for p in sorted(directory.iterdir()) if p.suffix in SUFFIXES]
    if problems:
        raise DefinitionError(problems)
    return build_catalog(sources)


def extra_dirs_from_env(env: Mapping[str, str]) -> list[Path]:
    return [Path(part) for part in env.get(EXTRA_DIRS_ENV, "").split(os.pathsep) if part.strip()]


def packaged_sources() -> list[tuple[str, str]]:
    """(name, text) of every definition file in the package's `definitions/`."""
    folder = resources.files("aigen.modeldefs") / "definitions"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(SUFFIXES)), key=lambda f: f.name)
    return [(f"aigen/modeldefs/definitions/{f.name}", f.read_text(encoding="utf-8")) for f in files]


def build_catalog(sources: Iterable[tuple[str, str]]) -> Catalog:
    """A catalog from (file name, YAML text) pairs; raises DefinitionError listing every problem."""
    builder = _Builder()
    for name, text in sources:
        builder.add_file(name, text)
    return builder.finish()


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DefinitionError([DefinitionProblem(str(path), f"is not UTF-8 text ({exc.reason})")]) from None


class _Builder:
    def __init__(self) -> None:
        self.problems: list[DefinitionProblem] = []
        self.platforms: dict[str, PlatformDef] = {}
        self.providers: dict[str, ProviderDef] = {}
        self.models: dict[str, ModelDef] = {}
        self.sources: dict[str, str] = {}

    def add_file(self, name: str, text: str) -> None:
        try:
            raw = parse_yaml(text)
        except YamlError as exc:
            self.problems.append(DefinitionProblem(name, f"is not valid YAML: {exc}"))
            return
        if not isinstance(raw, dict):
            self.problems.append(
                DefinitionProblem(name, "must be a mapping with keys platform, providers and models")
            )
            return
        for key in raw:
            if key not in DefinitionFile.model_fields:
                self.problems.append(
                    DefinitionProblem(
                        name, f"unknown top-level key {key!r} (expected platform, providers, models)"
                    )
                )
        if raw.get("platform") is not None:
            self._add(name, "platform", PlatformDef, raw["platform"], self.platforms)
        for entry in self._entries(name, raw, "providers"):
            self._add(name, "provider", ProviderDef, entry, self.providers)
        for entry in self._entries(name, raw, "models"):
            self._add(name, "model", ModelDef, entry, self.models)

    def _entries(self, name: str, raw: dict[Any, Any], key: str) -> list[Any]:
        entries = raw.get(key) or []
        if isinstance(entries, list):
            return entries
        self.problems.append(DefinitionProblem(name, f"{key} must be a list"))
        return []

    def _add(self, name: str, kind: Kind, cls: type[BaseModel], raw: Any, into: dict[str, Any]) -> None:
        slug = raw.get("slug") if isinstance(raw, dict) else None
        slug = slug if isinstance(slug, str) else None
        try:
            definition: Any = cls.model_validate(raw)
        except ValidationError as exc:
            for where, reason in _schema_problems(exc, raw):
                self.problems.append(DefinitionProblem(name, reason, kind, slug, where))
            return
        key = f"{kind}:{definition.slug}"
        if definition.slug in into:
            self.problems.append(
                DefinitionProblem(
                    name, f"is already defined in {self.sources[key]}", kind, definition.slug, "slug"
                )
            )
            return
        into[definition.slug] = definition
        self.sources[key] = name

    def finish(self) -> Catalog:
        for provider in self.providers.values():
            if provider.platform not in self.platforms:
                self._problem(
                    "provider",
                    provider.slug,
                    "platform",
                    _unknown("platform", provider.platform, self.platforms),
                )
        for model in self.models.values():
            self.problems += self._model_problems(model)
        if self.problems:
            raise DefinitionError(self.problems)
        return Catalog(
            platforms=MappingProxyType(dict(self.platforms)),
            providers=MappingProxyType(dict(self.providers)),
            models=MappingProxyType(dict(self.models)),
            sources=MappingProxyType(dict(self.sources)),
        )

    def _model_problems(self, model: ModelDef) -> Iterator[DefinitionProblem]:
        source = self.sources[f"model:{model.slug}"]
        provider = self.providers.get(model.provider)
        if provider is None:
            yield DefinitionProblem(
                source, _unknown("provider", model.provider, self.providers), "model", model.slug, "provider"
            )
        for i, other in enumerate(model.alternatives):
            where = f"alternatives[{i}]"
            alternative = self.models.get(other)
            if other == model.slug:
                yield DefinitionProblem(source, "names the model itself", "model", model.slug, where)
            elif alternative is None:
                yield DefinitionProblem(
                    source, _unknown("model", other, self.models), "model", model.slug, where
                )
            elif alternative.output_type != model.output_type:
                yield DefinitionProblem(
                    source,
                    f"{other} makes {alternative.output_type}, not {model.output_type}",
                    "model",
                    model.slug,
                    where,
                )
        for place, reason in check_model(model, provider):
            yield DefinitionProblem(source, reason, "model", model.slug, place)

    def _problem(self, kind: Kind, slug: str, where: str, reason: str) -> None:
        self.problems.append(DefinitionProblem(self.sources[f"{kind}:{slug}"], reason, kind, slug, where))


def _unknown(kind: str, slug: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(slug, list(known), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"names {kind} {slug!r}, which is not defined{hint}"


_UNION_TAGS = {"str", "int", "float", "bool"}


def _schema_problems(exc: ValidationError, raw: Any) -> list[tuple[str | None, str]]:
    """Pydantic's errors as (place, reason), places written with field keys: fields[size].default."""
    found: dict[str | None, list[str]] = {}
    for error in exc.errors():
        loc = list(error["loc"])
        while loc and loc[-1] in _UNION_TAGS:
            loc.pop()
        where = _place(loc, raw)
        reason = _reason(error)
        reasons = found.setdefault(where, [])
        if reason not in reasons:
            reasons.append(reason)
    return [(where, "; ".join(reasons)) for where, reasons in found.items()]


def _place(loc: list[int | str], raw: Any) -> str | None:
    text = ""
    node = raw
    for part in loc:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and part < len(node) else None
            key = item.get("key") if isinstance(item, dict) else None
            text += f"[{key}]" if isinstance(key, str) else f"[{part}]"
            node = item
        else:
            text += f".{part}" if text else part
            node = node.get(part) if isinstance(node, dict) else None
    return text or None


def _reason(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known setting"
    if kind in ("model_type", "dict_type"):
        return "must be a mapping of settings"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")
