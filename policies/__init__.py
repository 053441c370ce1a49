"""Decision points on the request path: consent, rate limits, data access."""
