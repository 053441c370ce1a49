"""Adapters for the five financing platforms (one Protocol, one registry)."""
