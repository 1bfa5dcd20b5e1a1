"""YAML for matrices and manifests, read strictly: a key given twice in one mapping is an error, not a silent
override (PyYAML keeps the last value, so a second ``smoke:`` or ``seeds:`` would quietly replace the first)."""
from __future__ import annotations

from typing import Any

import yaml


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} given twice (lines {seen[key]} and {line}); keep one", key_node.start_mark)
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load(text: str) -> Any:
    """``yaml.safe_load`` that raises a ``yaml.YAMLError`` naming the line of a duplicated key."""
    return yaml.load(text, Loader=_StrictLoader)
