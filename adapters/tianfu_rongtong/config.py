"""天府融通's block of config/platforms.yaml: the pull platforms' shared fields."""

from __future__ import annotations

from adapters.pull import PullConfig


class TianfuRongtongConfig(PullConfig):
    """`simulator_file` (JSON: `base_url`, `client_id`, `client_secret`), `schedule_s`,
    `breaker_failures`, `breaker_open_s`."""
