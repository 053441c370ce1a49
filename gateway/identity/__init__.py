"""Identity: the OAuth 2.0 authorisation server for banks, platforms and departments."""
