"""Small definition files for tests: one platform, one provider, one model, each overridable."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from aigen.modeldefs.loader import Catalog, DefinitionError, DefinitionProblem, build_catalog

PLATFORM: dict[str, Any] = {
    "slug": "acme",
    "name": "Acme",
    "website": "https://acme.example",
    "description": {"en": "Acme media.", "zh": "Acme 媒体。"},
}
PROVIDER: dict[str, Any] = {
    "slug": "acme",
    "name": "Acme",
    "platform": "acme",
    "description": {"en": "Acme API.", "zh": "Acme 接口。"},
    "api_endpoint": "https://api.acme.example",
    "credit_usd": 0.01,
}
MODEL: dict[str, Any] = {
    "slug": "acme-image",
    "name": "Acme Image",
    "description": {"en": "Pictures.", "zh": "图片。"},
    "provider": "acme",
    "output_type": "IMAGE",
    "adapter": "AcmeImageAdapter",
    "fields": [
        {
            "key": "size",
            "type": "select",
            "label": {"en": "Size", "zh": "尺寸"},
            "default": "1:1",
            "options": [
                {"value": "1:1", "label": {"en": "Square", "zh": "方形"}},
                {"value": "16:9", "label": {"en": "Wide", "zh": "宽屏"}},
            ],
        }
    ],
    "pricing": {"currency": "credits", "expr": "{'1:1': 4, '16:9': 6}[size] * n"},
}


def model(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(MODEL)
    out.update(changes)
    return out


def field(key: str, type_: str, **more: Any) -> dict[str, Any]:
    return {"key": key, "type": type_, "label": {"en": key.title(), "zh": key}, **more}


def option(value: Any, en: str | None = None) -> dict[str, Any]:
    text = en or str(value)
    return {"value": value, "label": {"en": text, "zh": text}}


def document(
    *models: dict[str, Any], platform: dict[str, Any] | None = PLATFORM, providers: list[Any] | None = None
) -> str:
    body: dict[str, Any] = {}
    if platform is not None:
        body["platform"] = platform
    body["providers"] = [PROVIDER] if providers is None else providers
    body["models"] = list(models) if models else [MODEL]
    return yaml.safe_dump(body, allow_unicode=True, sort_keys=False)


def catalog_of(**files: str) -> Catalog:
    return build_catalog((f"{name}.yaml", text) for name, text in files.items())


def single_model(**changes: Any) -> Catalog:
    return catalog_of(acme=document(model(**changes)))


def problems_of(**files: str) -> tuple[DefinitionProblem, ...]:
    try:
        catalog_of(**files)
    except DefinitionError as exc:
        return exc.problems
    raise AssertionError("the definitions loaded, but problems were expected")


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path
