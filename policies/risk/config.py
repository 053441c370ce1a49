"""The monitor's rules as configured in config/risk_rules.yaml.

Each rule's settings model sits beside the rule (its declarative schema);
this module gathers them into one file, validates it at start-up and builds
the rules. A broken file stops start-up: `RiskRules.load` raises ValueError
naming the file and the field.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from policies.risk.base import Rule
from policies.risk.multi_lending import MultiLendingConfig, MultiLendingRule
from policies.risk.new_entity_risk import NewEntityRiskConfig, NewEntityRiskRule
from policies.risk.overdue_default import OverdueDefaultConfig, OverdueDefaultRule
from policies.risk.platform_stress import PlatformStressConfig, PlatformStressRule
from policies.risk.post_loan_deterioration import (
    PostLoanDeteriorationConfig,
    PostLoanDeteriorationRule,
)
from policies.risk.query_abuse import QueryAbuseConfig, QueryAbuseRule
from policies.risk.supply_chain_cluster import SupplyChainClusterConfig, SupplyChainClusterRule


class RiskRules(BaseModel):
    """Every section is required, so a rule left out of the file is a mistake, not a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    multi_lending: MultiLendingConfig
    post_loan_deterioration: PostLoanDeteriorationConfig
    overdue_default: OverdueDefaultConfig
    supply_chain_cluster: SupplyChainClusterConfig
    query_abuse: QueryAbuseConfig
    new_entity_risk: NewEntityRiskConfig
    platform_stress: PlatformStressConfig

    @classmethod
    def load(cls, path: Path) -> RiskRules:
        try:
            raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: {exc}") from exc
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
                for err in exc.errors()
            )
            raise ValueError(f"{path}: {problems}") from exc

    @property
    def retention(self) -> timedelta:
        """How far back of the latest event a history must keep for every rule to see its window."""
        sections = (
            self.multi_lending,
            self.post_loan_deterioration,
            self.overdue_default,
            self.supply_chain_cluster,
            self.query_abuse,
            self.new_entity_risk,
            self.platform_stress,
        )
        # Windows that may contain an event reach one span past it on either side.
        return max(2 * section.horizon for section in sections)


def build_rules(config: RiskRules) -> list[Rule]:
    """The enabled rules, in a fixed order so findings come out in the same order every run."""
    candidates: list[tuple[bool, Rule]] = [
        (config.multi_lending.enabled, MultiLendingRule(config.multi_lending)),
        (
            config.post_loan_deterioration.enabled,
            PostLoanDeteriorationRule(config.post_loan_deterioration),
        ),
        (config.overdue_default.enabled, OverdueDefaultRule(config.overdue_default)),
        (config.supply_chain_cluster.enabled, SupplyChainClusterRule(config.supply_chain_cluster)),
        (config.query_abuse.enabled, QueryAbuseRule(config.query_abuse)),
        (config.new_entity_risk.enabled, NewEntityRiskRule(config.new_entity_risk)),
        (config.platform_stress.enabled, PlatformStressRule(config.platform_stress)),
    ]
    return [rule for enabled, rule in candidates if enabled]
