"""The demo's identity provider: a small OpenID Connect provider the gateway logs
enterprises' people in with (spec: "Enterprise login").

- `users.py`: the people (`.xyd/demo/enterprise-users.csv`, one or more per demo
  profile), their scrypt hashes and stable subjects;
- `registration.py`: the provider's signing key and the gateway's client
  registration, kept under `.xyd/demo/oidc/`;
- `provider.py`: the Starlette app (discovery, JWKS, authorisation code flow
  with PKCE S256, token, userinfo); `pages.py` its HTML, `answers.py`
  its error answers and form reader;
- `serve.py`: `xyd demo oidc`'s server on a port of its own.
"""
