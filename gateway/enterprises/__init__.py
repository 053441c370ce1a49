"""Enterprises: registration data by credit code."""
