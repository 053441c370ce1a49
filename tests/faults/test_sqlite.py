"""Embedded mode (SQLite) on a disk that fills up or turns read-only: 503 problem
documents saying so, never a 500; and the gateway works again once space is back.

The disk is a real small tmpfs mounted for the test (root in a container that
may mount); elsewhere the test is skipped, saying why."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from starlette.testclient import TestClient

from gateway.app import create_app
from testkit.builders import code
from testkit.clients import register
from tests.faults.conftest import gateway_settings, seed_enterprises
from tests.faults.served import consent_body
from tests.reports.test_reports_api import bearer, consent

DISK_MB = 8


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "disk"
    where.mkdir()
    try:
        _mount("-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(where))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a small tmpfs here ({exc}); needs root with CAP_SYS_ADMIN")
    try:
        yield where
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(["umount", "-l", str(where)], check=True, capture_output=True)


def _fill(path: Path) -> None:
    """Write until the disk refuses: ENOSPC for real."""
    with path.open("wb") as filler, contextlib.suppress(OSError):
        while True:
            filler.write(b"\0" * 65536)
            filler.flush()


def _problem_503(answer: object) -> dict[str, object]:
    assert answer.status_code == 503, answer.text  # type: ignore[attr-defined]
    assert answer.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body: dict[str, object] = answer.json()  # type: ignore[attr-defined]
    assert "Traceback" not in str(body)
    return body


def test_disk_full_then_read_only_is_503_and_recovers(
    small_disk: Path, sqlite_template: Path, tmp_path: Path
) -> None:
    database = small_disk / "xyd.db"
    shutil.copy(sqlite_template, database)
    url = f"sqlite:///{database}"
    engine = create_engine(url)
    seed_enterprises(engine, 1)
    bank = register(engine, "bank-a", org_code="BOCD")
    engine.dispose()
    settings = gateway_settings(tmp_path, url, run_background=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        auth = bearer(client, bank)
        assert client.get(f"/v1/enterprises/{code(1)}", headers=auth).status_code == 200

        _fill(small_disk / "filler")
        body = consent_body()
        answers = [client.post("/v1/consents", json=body, headers=auth) for _ in range(3)]
        answers.append(client.get(f"/v1/enterprises/{code(1)}", headers=auth))
        for answer in answers:
            assert "cannot be written" in str(_problem_503(answer)["detail"])

        (small_disk / "filler").unlink()
        assert client.get(f"/v1/enterprises/{code(1)}", headers=auth).status_code == 200
        assert consent(client, auth)["credit_code"] == code(1)

    # Read-only (remounted once nothing holds the file open): the gateway starts,
    # and every request that must write says why it cannot.
    _mount("-o", "remount,ro", str(small_disk))
    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            refused = client.get(f"/v1/enterprises/{code(1)}", headers=auth)
            assert "read-only" in str(_problem_503(refused)["detail"])
            _problem_503(client.post("/v1/consents", json=consent_body(), headers=auth))
    finally:
        _mount("-o", "remount,rw", str(small_disk))
