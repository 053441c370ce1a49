"""What /proc says of a process: its status fields and the mount it sees at a
point (the image and cluster tests check uid, capabilities and a read-only root)."""

from __future__ import annotations

from pathlib import Path


def process_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = (line.partition(":") for line in lines if ":" in line)
    return {name.strip(): value.strip() for name, _, value in fields}


def mount_at(pid: int, point: str) -> str:
    # The last mount at a point is the one the process sees.
    found = [
        line
        for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines()
        if line.split()[4] == point
    ]
    assert found, f"nothing mounted at {point} for {pid}"
    return found[-1]
