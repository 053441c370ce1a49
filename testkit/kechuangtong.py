"""科创通 Kechuangtong served for tests: the gateway with that platform alone on
127.0.0.1, the simulator's sender, and its events for one enterprise."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from fastapi import FastAPI

from gateway.app import create_app
from gateway.identifiers import make_credit_code
from gateway.loans.events import BEIJING
from gateway.settings import Settings
from testkit.live import serve
from xyd_demo.simulators.kechuangtong import Sender, event

CONFIG = Path(__file__).resolve().parents[1] / "config"
CODE = make_credit_code("9", "1", "510100", "MA61R8XW")
T0 = datetime(2026, 11, 20, 10, 15, tzinfo=BEIJING)


@dataclass
class Gateway:
    app: FastAPI
    sender: Sender
    secret_file: Path


@contextmanager
def running(
    settings: Settings,
    tmp_path: Path,
    *,
    secret_lines: list[bytes] | None = None,
    block: dict[str, Any] | None = None,
    sign_with: list[bytes] | None = None,
    background: bool = False,
) -> Iterator[Gateway]:
    """The gateway with only Kechuangtong enabled, served on 127.0.0.1, and a sender."""
    secret_file = tmp_path / "kct" / "secret"
    lines = [secrets.token_hex(16).encode()] if secret_lines is None else secret_lines
    if lines:
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        secret_file.write_bytes(b"\n".join(lines) + b"\n")
    config = tmp_path / "config"
    shutil.copytree(CONFIG, config, dirs_exist_ok=True)
    platform = {"enabled": True, "secret_file": str(secret_file), "callback_url": None}
    platform.update(block or {})
    (config / "platforms.yaml").write_text(yaml.safe_dump({"kechuangtong": platform}))
    settings.config_dir = config
    settings.public_base_url = "http://127.0.0.1"
    settings.run_background = background
    settings.outbox_poll_s = 0.1
    app = create_app(settings)
    with serve(app) as base, Sender(base, sign_with or lines or [b"unknown"]) as sender:
        yield Gateway(app, sender, secret_file)


def kct(kind: str, n: int, loan_no: str = "KCT2026110400123", **extra: Any) -> dict[str, Any]:
    """Event `n` of a loan of CODE's, `n` hours after T0."""
    return event(
        kind,
        event_id=f"kct-20261120-{n:06d}",
        credit_code=CODE,
        application_no=loan_no,
        occurred_at=T0 + timedelta(hours=n),
        **extra,
    )


def repayment(amount: str, days: int, due: str = "2026-12-20") -> dict[str, Any]:
    return {"dueDate": due, "amount": amount, "daysOverdue": days}
