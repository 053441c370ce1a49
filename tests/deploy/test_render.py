"""deploy/render.py: the kustomize subset the manifests use, as kustomize does it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from deploy.render import Manifest, RenderError, content_suffix, render, strategic_merge
from deploy.validate import KUSTOMIZATIONS

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: web:1
          env: [{name: A, value: "1"}]
      volumes: [{name: config, configMap: {name: settings}}]
"""


def _write(directory: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def _by_kind(objects: list[Manifest], kind: str) -> dict[str, object]:
    (found,) = [o for o in objects if o["kind"] == kind]
    return found


def test_base_and_overlay(tmp_path: Path) -> None:
    _write(tmp_path, {
        "base/kustomization.yaml": "resources: [web.yaml]\n"
        "labels: [{pairs: {team: credit}}]\n"
        "configMapGenerator: [{name: settings, files: [../app.yaml]}]\n",
        "base/web.yaml": DEPLOYMENT,
        "app.yaml": "a: 1\n",
        "prod/kustomization.yaml": "resources: [../base]\n"
        "images: [{name: web, newName: registry/web, newTag: '2'}]\n"
        "replicas: [{name: web, count: 4}]\n"
        "patches: [{path: env.yaml}]\n",
        "prod/env.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
        "spec: {template: {spec: {containers: [{name: web, env: "
        "[{name: A, value: '2'}, {name: B, value: '3'}]}]}}}\n",
    })  # fmt: skip
    objects = render(tmp_path / "prod")
    deployment = _by_kind(objects, "Deployment")
    config_map = _by_kind(objects, "ConfigMap")
    suffix = content_suffix({"app.yaml": "a: 1\n"})
    assert config_map["metadata"] == {"name": f"settings-{suffix}", "labels": {"team": "credit"}}
    spec = deployment["spec"]
    assert isinstance(spec, dict)
    assert spec["replicas"] == 4
    pod = spec["template"]["spec"]
    assert pod["containers"] == [{
        "name": "web", "image": "registry/web:2",
        "env": [{"name": "B", "value": "3"}, {"name": "A", "value": "2"}],
    }]  # fmt: skip
    assert pod["volumes"][0]["configMap"]["name"] == config_map["metadata"]["name"]


def test_suffix_is_kustomizes() -> None:
    # `kustomize build` (v5.5) of a generator with one file `a` holding "b\n": x-64796tc24d.
    assert content_suffix({"a": "b\n"}) == "64796tc24d"


def test_merge_replaces_lists_without_a_merge_key() -> None:
    merged = strategic_merge({"a": {"b": [1, 2], "c": 1}}, {"a": {"b": [3]}})
    assert merged == {"a": {"b": [3], "c": 1}}


@pytest.mark.parametrize(
    ("kustomization", "message"),
    [
        ("namePrefix: x-\n", "fields this renderer does not do"),
        ("resources: [web.yaml]\nreplicas: [{name: other, count: 2}]\n", "no workload named"),
        ("resources: [web.yaml]\npatches: [{path: p.yaml}]\n", "found 0 such objects"),
    ],
)
def test_refuses_what_it_does_not_do(tmp_path: Path, kustomization: str, message: str) -> None:
    _write(tmp_path, {
        "kustomization.yaml": kustomization,
        "web.yaml": DEPLOYMENT,
        "p.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n",
    })  # fmt: skip
    with pytest.raises(RenderError, match=message):
        render(tmp_path)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl (kustomize) here")
@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda d: d.name)
def test_same_objects_as_kustomize(directory: Path) -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(directory)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip

    def keyed(objects: list[Manifest]) -> dict[tuple[object, object], Manifest]:
        return {(o["kind"], o["metadata"]["name"]): o for o in objects}  # type: ignore[index]

    assert keyed(render(directory)) == keyed(list(yaml.safe_load_all(built.stdout)))
