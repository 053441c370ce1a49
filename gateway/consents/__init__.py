"""Consents: an enterprise's authorisation for one bank, purpose and set of sections."""
