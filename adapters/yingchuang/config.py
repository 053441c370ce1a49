"""盈创动力's block of config/platforms.yaml: the pull platforms' shared fields."""

from __future__ import annotations

from adapters.pull import PullConfig


class YingchuangConfig(PullConfig):
    """`simulator_file` (JSON: `base_url`, `app_key`, `app_secret`), `schedule_s`,
    `breaker_failures`, `breaker_open_s`."""
