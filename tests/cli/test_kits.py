"""`xyd demo` and `xyd call` come from the demo kit; without it `xyd` says so."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import entry_points
from pathlib import Path

import typer
from typer.testing import CliRunner

from gateway.cli import app
from gateway.cli.kits import GROUP, NOT_INSTALLED, add_kits

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_demo_kit_adds_its_commands() -> None:
    assert [kit.value for kit in entry_points(group=GROUP)] == ["xyd_demo.cli:register"]
    shown = CliRunner().invoke(app, ["demo", "--help"])
    assert shown.exit_code == 0, shown.output
    assert "seed" in shown.output


def test_without_the_kit_demo_and_call_say_it_is_not_installed() -> None:
    bare = typer.Typer(no_args_is_help=True)
    bare.command()(lambda: None)
    add_kits(bare, found=())
    for args in (["demo", "seed", "--enterprises", "20"], ["call", "demo-bank", "GET", "/"]):
        answer = CliRunner().invoke(bare, args)
        assert answer.exit_code == 2, answer.output
        assert NOT_INSTALLED in answer.output
    assert "demo" not in CliRunner().invoke(bare, ["--help"]).output


def test_the_production_wheel_carries_no_demo_data_or_simulators(tmp_path: Path) -> None:
    # Built from a copy: setuptools keeps build/lib between builds, and a checkout's
    # leftovers from an older layout would end up in the wheel.
    source = tmp_path / "source"
    for name in ("gateway", "adapters", "policies", "demo"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("xyd_gateway-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(name.startswith("gateway/cli/") for name in names)
    tops = {name.split("/")[0] for name in names}
    assert tops == {"gateway", "adapters", "policies", wheel.name.split("-py3")[0] + ".dist-info"}
    assert not [name for name in names if "demo" in name or "simulator" in name]
