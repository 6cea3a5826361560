"""Safe YAML reading for user documents: no duplicate keys, no alias bombs.

PyYAML's safe loader shares an anchored node between its aliases, so a nine-line
"billion laughs" document loads in microseconds — and then explodes in whatever walks the
data afterwards (pydantic, template substitution, an error message printing the value).
`load_yaml_documents` counts every document's size *with aliases expanded* on the composed
node graph (memoised per node, so the count itself is cheap) and refuses a document above
`MAX_YAML_NODES` before anything is constructed.
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["MAX_YAML_BYTES", "MAX_YAML_NODES", "YamlBombError", "YamlDuplicateKeyError", "load_yaml_documents"]

# A Katib Experiment with a full Job spec has a few hundred nodes; a hundred thousand is far
# beyond any real one and still builds in well under a second.
MAX_YAML_NODES = 100_000

# Kubernetes stores at most ~1.5 MiB per object, so a larger Experiment could never be applied.
MAX_YAML_BYTES = 4 * 1024 * 1024

# libyaml's parser when present: the same results and error marks, several times faster.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlDuplicateKeyError(yaml.constructor.ConstructorError):
    """A key given twice in one mapping."""


class YamlBombError(ValueError):
    """A document whose aliases expand past MAX_YAML_NODES values, or refer to themselves."""


class _UniqueKeyLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe loader that rejects a key given twice in one mapping (PyYAML keeps the last silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # an unhashable key (a list); the constructor reports it below
            duplicate = False
        if duplicate:
            raise YamlDuplicateKeyError(
                "while constructing a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
            )
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _expanded_size(root: yaml.Node, limit: int) -> int:
    """Number of nodes with aliases expanded; stops counting once past `limit`.

    Raises YamlBombError for an alias inside its own anchor (`&a [*a]`), which PyYAML
    would build into a self-containing list.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    # Iterative post-order walk: deep nesting must not hit Python's recursion limit.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if not children_done:
            if id(node) in open_nodes:
                raise YamlBombError("an alias refers to the node that contains it (a recursive document)")
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        open_nodes.discard(id(node))
        total = 1 + sum(sizes.get(id(child), 0) for child in children)
        sizes[id(node)] = min(total, limit + 1)
        if total > limit:
            return total
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_yaml_documents(text: str, max_nodes: int = MAX_YAML_NODES) -> list[Any]:
    """Every document of `text`, parsed with the safe schema.

    Raises `yaml.YAMLError` (with marks) for malformed YAML, `YamlDuplicateKeyError` for a
    key given twice, `YamlBombError` for a document that expands past `max_nodes` values.
    """
    loader = _UniqueKeyLoader(text)
    documents: list[Any] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if _expanded_size(node, max_nodes) > max_nodes:
                raise YamlBombError(
                    f"document {len(documents) + 1} holds more than {max_nodes} YAML values, counting every "
                    "use of an *alias in full (a 'billion laughs' document?); an Experiment has a few hundred"
                )
            documents.append(loader.construct_document(node))
    finally:
        loader.dispose()
    return documents
