"""What the app runs on is reached through `gateway.state` alone, typed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from adapters.base import PlatformServices
from gateway.settings import Settings
from gateway.state import GatewayState, NotStarted

ROOT = Path(__file__).resolve().parent.parent
STATE_MODULE = ROOT / "gateway" / "state.py"
SCANNED = ("gateway", "adapters", "tests", "testkit", "loadtests")
# `app.state`, `request.app.state`, `scope["app"].state`; not `request.state`
# (one request's own values) nor this file's own pattern.
APP_STATE = re.compile(r"\bapp(?:\"\]|'\])?\.state\b")
STATE_PARAMETER = re.compile(r"(?:^|_)state$")


def _sources(*tops: str) -> list[Path]:
    return sorted(
        p for top in tops for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts
    )


def test_only_the_state_module_reads_app_state() -> None:
    this = Path(__file__).resolve()
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _sources(*SCANNED)
        if path not in (STATE_MODULE, this)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if APP_STATE.search(line)
    ]
    assert not found, f"read the app's state with gateway.state.state_of: {found}"


def _any_state_parameters(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        arguments = node.args
        for argument in arguments.posonlyargs + arguments.args + arguments.kwonlyargs:
            annotation = argument.annotation
            if (
                STATE_PARAMETER.search(argument.arg)
                and annotation is not None
                and "Any" in ast.unparse(annotation)
            ):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}({argument.arg})")
    return found


def test_no_state_parameter_is_typed_any() -> None:
    found = [hit for path in _sources("gateway", "adapters") for hit in _any_state_parameters(path)]
    assert not found, f"take gateway.state.GatewayState, not Any: {found}"


def test_a_lifespan_resource_read_before_start_says_so(tmp_path: Path) -> None:
    state = GatewayState(
        Settings(state_dir=tmp_path),
        b"k",
        None,
        None,
        [],
        None,
        {},  # type: ignore[arg-type]
        PlatformServices(),
    )
    with pytest.raises(NotStarted, match="engine is made when the app starts"):
        _ = state.engine
    with pytest.raises(AttributeError):
        _ = state.no_such_thing  # type: ignore[attr-defined]
