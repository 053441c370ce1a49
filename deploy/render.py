"""Render a kustomization: the subset of kustomize deploy/kubernetes uses.

No kustomize is installable here (Debian has none, PyPI none, kubectl is not
packaged), so `make lint` renders with this. It knows the fields below and
refuses any other, so a manifest never depends on a feature it silently skips:

    resources           files (one or more documents) and kustomization directories
    labels              pairs added to every object's metadata.labels (no selectors)
    configMapGenerator  name + files, with kustomize's content-hash name suffix,
                        and the references of pod templates renamed to it
    images              name → newName / newTag on every container
    replicas            name → count on Deployments
    patches             path: a strategic merge patch aimed by its kind and name

Files may lie outside the kustomization (the ConfigMap is made from config/):
kustomize itself needs `--load-restrictor LoadRestrictionsNone` for that.

    python -m deploy.render deploy/kubernetes/overlays/production
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import sys
from pathlib import Path
from typing import TypeAlias

import yaml

__all__ = ["Manifest", "RenderError", "pod_spec", "render", "strategic_merge"]

Manifest: TypeAlias = dict[str, object]

KNOWN_FIELDS = frozenset(
    {"resources", "labels", "configMapGenerator", "images", "replicas", "patches"}
)
# Strategic merge keys of the lists the manifests patch (Kubernetes' own
# patchMergeKey for each); any other list is replaced whole, as kustomize does.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}
WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"})


class RenderError(ValueError):
    """The kustomization asks for something this renderer does not do, or is broken."""


def render(directory: Path) -> list[Manifest]:
    """Every object the kustomization in `directory` produces, in resource order."""
    kustomization = _load_kustomization(directory)
    objects: list[Manifest] = []
    for entry in _strings(kustomization, "resources"):
        path = directory / entry
        objects.extend(render(path) if path.is_dir() else _documents(path))
    renames: dict[str, str] = {}
    for generator in _mappings(kustomization, "configMapGenerator"):
        config_map = _config_map(directory, generator)
        renames[_name(generator)] = _name(config_map.get("metadata"))
        objects.append(config_map)
    for patch in _mappings(kustomization, "patches"):
        _apply_patch(objects, directory / str(patch["path"]))
    for pairs in _mappings(kustomization, "labels"):
        for obj in objects:
            metadata = _mapping(obj, "metadata")
            labels = _mapping(metadata, "labels")
            labels.update(_str_dict(pairs.get("pairs")))
    for image in _mappings(kustomization, "images"):
        _set_image(objects, image)
    for replicas in _mappings(kustomization, "replicas"):
        _set_replicas(objects, replicas)
    _rename_config_maps(objects, renames)
    return objects


def _load_kustomization(directory: Path) -> dict[str, object]:
    path = directory / "kustomization.yaml"
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(loaded, dict):
        raise RenderError(f"{path}: not a mapping")
    unknown = set(loaded) - KNOWN_FIELDS
    if unknown:
        raise RenderError(f"{path}: fields this renderer does not do: {sorted(unknown)}")
    return loaded


def _documents(path: Path) -> list[Manifest]:
    documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    for document in documents:
        if not isinstance(document, dict) or "kind" not in document:
            raise RenderError(f"{path}: a document that is not a Kubernetes object")
    return documents


def _config_map(directory: Path, generator: dict[str, object]) -> Manifest:
    data: dict[str, str] = {}
    for entry in _strings(generator, "files"):
        key, _, source = entry.rpartition("=")
        path = directory / source
        data[key or path.name] = path.read_text(encoding="utf-8")
    name = _name(generator)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{name}-{content_suffix(data)}"},
        "data": data,
    }


def content_suffix(data: dict[str, str]) -> str:
    """kustomize's suffix: sha256 of Go's JSON of {data, kind, name}, ten hex
    characters with the vowels and look-alike digits swapped for letters.
    kustomize 5 hashes before the name is set: the name hashed is empty."""
    encoded = json.dumps(
        {"data": data, "kind": "ConfigMap", "name": ""},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    # Go's encoder escapes these for HTML safety; the hash covers its bytes.
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        encoded = encoded.replace(char, escaped)
    digest = hashlib.sha256(encoded.encode("utf-8")).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def _apply_patch(objects: list[Manifest], path: Path) -> None:
    (patch,) = _documents(path)
    target = (patch["kind"], _name(patch.get("metadata")))
    matches = [o for o in objects if (o["kind"], _name(o.get("metadata"))) == target]
    if len(matches) != 1:
        raise RenderError(f"{path}: patches {target}, found {len(matches)} such objects")
    merged = strategic_merge(matches[0], patch)
    matches[0].clear()
    matches[0].update(merged)


def strategic_merge(base: Manifest, patch: Manifest) -> Manifest:
    """`patch` merged into a copy of `base`: mappings key by key, the lists in
    MERGE_KEYS item by item on their key, any other value replaced."""
    merged = copy.deepcopy(base)
    for key, value in patch.items():
        current = merged.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merged[key] = strategic_merge(current, value)
        elif isinstance(value, list) and isinstance(current, list) and key in MERGE_KEYS:
            merged[key] = _merge_list(current, value, MERGE_KEYS[key])
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _merge_list(base: list[object], patch: list[object], key: str) -> list[object]:
    """Items with a key already there merged in place; new ones first, in the
    patch's order (where kustomize puts them)."""
    merged = copy.deepcopy(base)
    added: list[object] = []
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise RenderError(f"a patched list item without its merge key {key!r}: {item!r}")
        same = [
            i for i, old in enumerate(merged) if isinstance(old, dict) and old[key] == item[key]
        ]
        if same:
            old = merged[same[0]]
            assert isinstance(old, dict)
            merged[same[0]] = strategic_merge(old, item)
        else:
            added.append(copy.deepcopy(item))
    return added + merged


def pod_spec(obj: Manifest) -> dict[str, object] | None:
    """A workload's pod template spec; None for any other kind."""
    if obj["kind"] not in WORKLOADS:
        return None
    template = _mapping(_mapping(obj, "spec"), "template")
    return _mapping(template, "spec")


def _containers(obj: Manifest) -> list[dict[str, object]]:
    spec = pod_spec(obj)
    if spec is None:
        return []
    found: list[dict[str, object]] = []
    for field in ("initContainers", "containers"):
        found.extend(c for c in _list(spec.get(field)) if isinstance(c, dict))
    return found


def _set_image(objects: list[Manifest], image: dict[str, object]) -> None:
    name = str(image["name"])
    for obj in objects:
        for container in _containers(obj):
            current = str(container.get("image", ""))
            base, _, tag = current.partition(":")
            if base != name:
                continue
            new_tag = str(image.get("newTag", tag))
            new_name = str(image.get("newName", base))
            container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


def _set_replicas(objects: list[Manifest], replicas: dict[str, object]) -> None:
    name, count = str(replicas["name"]), replicas["count"]
    targets = [
        o
        for o in objects
        if o["kind"] in {"Deployment", "StatefulSet", "ReplicaSet"}
        and _name(o.get("metadata")) == name
    ]
    if not targets:
        raise RenderError(f"replicas: no workload named {name!r}")
    for obj in targets:
        _mapping(obj, "spec")["replicas"] = count


def _rename_config_maps(objects: list[Manifest], renames: dict[str, str]) -> None:
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        for volume in _list(spec.get("volumes")):
            source = volume.get("configMap") if isinstance(volume, dict) else None
            if isinstance(source, dict) and source.get("name") in renames:
                source["name"] = renames[str(source["name"])]


def _name(metadata: object) -> str:
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        raise RenderError(f"no name in {metadata!r}")
    return str(metadata["name"])


def _mapping(parent: dict[str, object], key: str) -> dict[str, object]:
    value = parent.setdefault(key, {})
    if not isinstance(value, dict):
        raise RenderError(f"{key}: expected a mapping, found {value!r}")
    return value


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _mappings(parent: dict[str, object], key: str) -> list[dict[str, object]]:
    items = _list(parent.get(key))
    if not all(isinstance(item, dict) for item in items):
        raise RenderError(f"{key}: expected a list of mappings")
    return [item for item in items if isinstance(item, dict)]


def _strings(parent: dict[str, object], key: str) -> list[str]:
    return [str(item) for item in _list(parent.get(key))]


def _str_dict(value: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise RenderError(f"labels: expected pairs, found {value!r}")
    return {str(k): str(v) for k, v in value.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Render a kustomization to YAML")
    parser.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    yaml.safe_dump_all(render(args.directory), sys.stdout, sort_keys=False, allow_unicode=True)


if __name__ == "__main__":
    main()
