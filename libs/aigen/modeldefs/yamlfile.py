"""Reading definition YAML with the scalar rules of YAML 1.2 and no silent duplicate keys.

PyYAML follows YAML 1.1, where an unquoted `16:9` is the base-60 integer 969, `on`/`no` are
booleans and `010` is octal. Aspect ratios and enum words are everywhere in model definitions,
so here only `true`/`false` are booleans and only plain decimal digits are numbers; everything
else stays the string it looks like. A key written twice in one mapping is an error rather than
"the last one wins".
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"


class YamlError(ValueError):
    """The text is not YAML, or repeats a key."""


class _DefinitionLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise YamlError(f"line {line}: key {key!r} appears twice in the same mapping")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_DefinitionLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_DefinitionLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_DefinitionLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$"), list("-+0123456789"))
_DefinitionLoader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"""^(?:[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?
            |[-+]?[0-9]+[eE][-+]?[0-9]+
            |[-+]?\.(?:inf|Inf|INF)
            |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> Any:
    """The document in `text`; raises YamlError with the line of the problem."""
    try:
        return yaml.load(text, Loader=_DefinitionLoader)  # noqa: S506 - a SafeLoader subclass
    except YamlError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise YamlError(f"{where}{exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise YamlError(str(exc)) from None
