"""Government credit records: validation per catalogue category, and ingestion."""
