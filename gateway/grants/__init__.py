"""The FAPI 2.0 authorisation code flow: pushed requests, approval, codes, refresh tokens."""
