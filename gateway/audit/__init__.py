"""The tamper-evident audit trail: a hash chain with signed checkpoints."""
