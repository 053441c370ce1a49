"""What verifying an access token costs on the request path, in microseconds.

    .venv/bin/python -m loadtests.token_bench [--redis redis://127.0.0.1:6379/0]

Measures, in one process: the first sight of a token (parse, ES256 signature
with a key parsed at start-up, claims), a token seen before (cache hit), and
the per-request denylist check (database, or Redis when given).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import create_engine

from gateway.db import make_async_engine
from gateway.identity.clients import create_client
from gateway.identity.startup import start_identity
from gateway.keys import jose
from gateway.redisconn import make_redis
from gateway.settings import Settings
from gateway.store.migrate import upgrade


async def measure(settings: Settings, rounds: int) -> None:
    engine = make_async_engine(settings)
    redis = make_redis(settings)
    identity = await start_identity(settings, engine, redis)
    client = await identity.client("bench-bank")
    assert client is not None
    tokens = [(await identity.tokens.issue(client, client.scopes))[0] for _ in range(rounds)]
    cache = identity.tokens._verified

    started = time.perf_counter()
    for token in tokens:
        await identity.tokens._verify_new(token)
    first = (time.perf_counter() - started) / rounds * 1e6
    started = time.perf_counter()
    for token in tokens:
        cache[token]
    hit = (time.perf_counter() - started) / rounds * 1e6
    caller = cache[tokens[0]]
    started = time.perf_counter()
    for _ in range(rounds):
        await identity.guard.denied(caller.jti, caller.client_id)
    denied = (time.perf_counter() - started) / rounds * 1e6
    started = time.perf_counter()
    for token in tokens:
        await identity.tokens.verify(token)
    full = (time.perf_counter() - started) / rounds * 1e6
    where = "Redis MGET" if redis is not None else "database"
    print(f"new token (parse + ES256 + claims): {first:7.1f} µs")
    print(f"seen token (cache hit)            : {hit:7.1f} µs")
    print(f"denylist check ({where:10})      : {denied:7.1f} µs")
    print(f"verify() of a seen token, in all  : {full:7.1f} µs")
    if redis is not None:
        await redis.aclose()
    await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--redis", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state:
        settings = Settings(state_dir=Path(state), redis_url=args.redis, token_cache_size=10**6)
        sync_engine = create_engine(settings.effective_database_url)
        upgrade(sync_engine)
        with sync_engine.begin() as conn:
            public = jose.public_jwk(ec.generate_private_key(ec.SECP256R1()))
            create_client(
                conn, client_id="bench-bank", display_name="bench", client_type="bank",
                jwks={"keys": [{**public, "kid": "k"}]},
            )  # fmt: skip
        sync_engine.dispose()
        asyncio.run(measure(settings, args.rounds))


if __name__ == "__main__":
    main()
