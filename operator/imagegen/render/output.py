"""The YAML stream `imagegen render` prints: what the operator would apply, for review."""

from collections.abc import Mapping, Sequence
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """Writes each object out in full: anchors and aliases make a manifest hard to review."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(manifests: Sequence[Mapping[str, Any]]) -> str:
    """A multi-document YAML stream, each document after `---`, keys in rendered order."""
    documents = [dict(manifest) for manifest in manifests]
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, explicit_start=True)
