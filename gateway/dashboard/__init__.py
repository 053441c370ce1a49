"""The risk officers' dashboard: local accounts, sessions, CSRF (accounts.py), HTML (router.py)."""
