"""An enterprise's access log: who read its data, read from the audit trail."""
