"""The Kubernetes manifests name what the gateway really has: its commands, the
paths it serves, its settings, the files those settings read; and every
container runs as a non-root user on a read-only root."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
import yaml

from deploy.render import Manifest, pod_spec, render
from deploy.validate import EXAMPLES, KUSTOMIZATIONS, failures
from gateway.app import create_app
from gateway.cli import app as cli_app
from gateway.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = {
    "gateway": ["xyd", "serve"],
    "monitor": ["xyd", "monitor"],
    "migrate": ["xyd", "db", "upgrade"],
}
PROBES = {"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": "/healthz"}
Container = dict[str, object]


@pytest.fixture(scope="module", params=KUSTOMIZATIONS, ids=lambda d: d.name)
def objects(request: pytest.FixtureRequest) -> list[Manifest]:
    directory: Path = request.param
    return render(directory)


def _dict(value: object) -> dict[str, object]:
    assert isinstance(value, dict), value
    return value


def _dicts(value: object) -> list[dict[str, object]]:
    return [_dict(item) for item in value] if isinstance(value, list) else []


def workloads(objects: list[Manifest]) -> Iterator[tuple[Manifest, dict[str, object]]]:
    for obj in objects:
        spec = pod_spec(obj)
        if spec is not None:
            yield obj, spec


def containers(objects: list[Manifest]) -> Iterator[tuple[dict[str, object], Container]]:
    for _, spec in workloads(objects):
        for container in _dicts(spec.get("initContainers")) + _dicts(spec.get("containers")):
            yield spec, container


def _component(obj: Manifest) -> str:
    labels = _dict(_dict(obj["metadata"]).get("labels"))
    return str(labels["app.kubernetes.io/component"])


def test_every_object_validates_strictly() -> None:
    assert failures("1.37.0") == []


def test_each_workload_runs_a_real_xyd_command(objects: list[Manifest]) -> None:
    found = {}
    for obj, spec in workloads(objects):
        (container,) = _dicts(spec["containers"])
        found[_component(obj)] = container["command"]
    assert found == COMMANDS
    root = typer.main.get_command(cli_app)
    for command in found.values():
        assert isinstance(command, list) and command[0] == "xyd"
        node: object = root
        for word in command[1:]:
            subcommands = getattr(node, "commands", None)
            assert isinstance(subcommands, dict), f"{command}: {word} is not a subcommand"
            node = subcommands.get(str(word))
            assert node is not None, f"`{' '.join(command)}`: no such xyd command"


def test_probes_and_scrape_path_are_served(objects: list[Manifest], tmp_path: Path) -> None:
    served = {
        path
        for path, operations in create_app(Settings(state_dir=tmp_path)).openapi()["paths"].items()
        if "get" in operations
    }
    (gateway,) = [spec for obj, spec in workloads(objects) if _component(obj) == "gateway"]
    (container,) = _dicts(gateway["containers"])
    probes = {
        kind: _dict(_dict(container[kind])["httpGet"])["path"]
        for kind in ("readinessProbe", "livenessProbe", "startupProbe")
    }
    assert probes == PROBES
    (deployment,) = [o for o in objects if o["kind"] == "Deployment" and _component(o) == "gateway"]
    template = _dict(_dict(deployment["spec"])["template"])
    annotations = _dict(_dict(template["metadata"])["annotations"])
    assert annotations["prometheus.io/scrape"] == "true"
    assert {*probes.values(), annotations["prometheus.io/path"]} <= served
    port = _dicts(container["ports"])[0]
    assert str(port["containerPort"]) == annotations["prometheus.io/port"]


def test_every_xyd_variable_is_a_setting_and_parses(
    objects: list[Manifest], monkeypatch: pytest.MonkeyPatch
) -> None:
    for _, container in containers(objects):
        env = _dicts(container.get("env"))
        names = [str(e["name"]) for e in env if str(e["name"]).startswith("XYD_")]
        unknown = [n for n in names if n.removeprefix("XYD_").lower() not in Settings.model_fields]
        assert not unknown, f"{container['name']}: not settings of gateway/settings.py: {unknown}"
        with monkeypatch.context() as patched:
            for item in env:
                if "value" in item:
                    patched.setenv(str(item["name"]), str(item["value"]))
            Settings()  # each literal value is one the setting accepts


def _env(container: Container) -> dict[str, str]:
    return {str(e["name"]): str(e["value"]) for e in _dicts(container.get("env")) if "value" in e}


def _mounts(container: Container) -> dict[str, dict[str, object]]:
    return {str(m["mountPath"]): m for m in _dicts(container.get("volumeMounts"))}


# The settings naming a secret's file (or directory), and the Secret (and key) there.
SECRET_FILES = {
    "XYD_KEY_ENCRYPTION_KEY_FILE": ("xyd-keys", "kek.key"),
    "XYD_PII_KEY_FILE": ("xyd-keys", "pii.key"),
    "XYD_PII_ENCRYPTION_KEYS_DIR": ("xyd-pii-keys", None),
    "XYD_ENTERPRISE_OIDC_CLIENT_SECRET_FILE": ("xyd-oidc", "client-secret"),
}


def test_settings_point_at_the_mounted_secrets(objects: list[Manifest]) -> None:
    (spec, container) = next((s, c) for s, c in containers(objects) if c["name"] == "gateway")
    env = _env(container)
    volumes = {str(v["name"]): v for v in _dicts(spec["volumes"])}
    mounts = _mounts(container)
    for setting, (secret, key) in SECRET_FILES.items():
        path = Path(env[setting])
        directory = path if key is None else path.parent
        mount = mounts[str(directory)]
        assert mount.get("readOnly") is True, setting
        source = _dict(volumes[str(mount["name"])]["secret"])
        assert source["secretName"] == secret, setting
        assert key is None or path.name == key, setting
    # Nothing secret in the writable state directory (serve.json, metric samples).
    state = Path(env["XYD_STATE_DIR"])
    assert "emptyDir" in volumes[str(mounts[str(state)]["name"])]
    assert not [m for m in mounts if Path(m).is_relative_to(state) and Path(m) != state]


def test_secrets_are_only_examples_with_placeholders(objects: list[Manifest]) -> None:
    assert not [o for o in objects if o["kind"] == "Secret"]
    examples = {
        str(_dict(d["metadata"])["name"]): _dict(d["stringData"])
        for path in EXAMPLES.glob("*.yaml")
        for d in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if d
    }
    values = [str(v) for data in examples.values() for v in data.values()]
    assert all(v.startswith("PLACEHOLDER-") for v in values)
    # Every Secret and key the manifests read is in the examples.
    for spec, container in containers(objects):
        for item in _dicts(container.get("env")):
            ref = _dict(item.get("valueFrom", {})).get("secretKeyRef")
            if ref is not None:
                ref = _dict(ref)
                assert str(ref["key"]) in examples[str(ref["name"])]
        for volume in _dicts(spec.get("volumes")):
            if "secret" in volume:
                assert _dict(volume["secret"])["secretName"] in examples
        for mount in _dicts(container.get("volumeMounts")):
            volume = next(v for v in _dicts(spec["volumes"]) if v["name"] == mount["name"])
            if "secret" in volume and "subPath" in mount:
                name = str(_dict(volume["secret"])["secretName"])
                assert mount["subPath"] in examples[name]


def test_config_map_carries_every_config_file(objects: list[Manifest]) -> None:
    (config_map,) = [o for o in objects if o["kind"] == "ConfigMap"]
    wanted = {p.name for p in (ROOT / "config").glob("*.yaml")}
    assert set(_dict(config_map["data"])) == wanted
    name = _dict(config_map["metadata"])["name"]
    for spec, container in containers(objects):
        env = _env(container)
        if "XYD_CONFIG_DIR" not in env:
            continue
        mount = _mounts(container)[env["XYD_CONFIG_DIR"]]
        volume = next(v for v in _dicts(spec["volumes"]) if v["name"] == mount["name"])
        assert _dict(volume["configMap"])["name"] == name


def test_every_container_runs_non_root_on_a_read_only_root(objects: list[Manifest]) -> None:
    count = 0
    for spec, container in containers(objects):
        pod = _dict(spec["securityContext"])
        own = _dict(container["securityContext"])
        assert pod["runAsNonRoot"] is True and own["runAsNonRoot"] is True
        assert int(str(pod["runAsUser"])) != 0
        assert _dict(pod["seccompProfile"])["type"] == "RuntimeDefault"
        assert own["readOnlyRootFilesystem"] is True
        assert own["allowPrivilegeEscalation"] is False
        assert _dict(own["capabilities"])["drop"] == ["ALL"]
        assert "/tmp" in _mounts(container)
        assert spec["automountServiceAccountToken"] is False
        count += 1
    assert count == 3


def test_production_overlay(objects: list[Manifest]) -> None:
    if not any(_env(c).get("XYD_PROFILE") for _, c in containers(objects)):
        pytest.skip("the base runs the default profile")
    for _, container in containers(objects):
        assert str(container["image"]).endswith(":1.0.0")
        if container["name"] == "gateway":
            assert _env(container)["XYD_PROFILE"] == "production"
    replicas = {
        str(_dict(o["metadata"])["name"]): _dict(o["spec"]).get("replicas")
        for o in objects
        if o["kind"] == "Deployment"
    }
    assert replicas == {"xyd-gateway": 3, "xyd-monitor": 2}
