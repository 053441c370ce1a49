"""Risk rules for the sandbox monitor: one Protocol, one class per rule, thresholds in config/."""
