"""The baseline every request-path figure is divided by.

A bare FastAPI route answering with a report-sized JSON held in memory,
serialised by orjson into a plain Response: no token, no consent, no rate
limit, no signature, no audit. Served the same way as the gateway (uvicorn
with uvloop and the gateway's httptools protocol, `gateway.connections`; the
same number of workers, each on a listening socket of its own:
`gateway.serving`) on the same path, so what differs is only what the gateway
does per request.

    XYD_BENCH_BODY_BYTES=8600 python -m loadtests.bare_app --port 8001 --workers 2
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.responses import Response

BODY_BYTES_ENV = "XYD_BENCH_BODY_BYTES"
DEFAULT_BODY_BYTES = 20_000


def report_like(size: int) -> dict[str, Any]:
    """A dict shaped like a signed report (sections of records with Chinese text) whose
    orjson encoding is exactly `size` bytes, so both servers send the same amount."""
    report: dict[str, Any] = {
        "report_id": "rpt_bare0000000000000",
        "credit_code": "91510100MA00000000",
        "sections": {"penalties": []},
        "padding": "",
    }
    records = report["sections"]["penalties"]
    while len(orjson.dumps(report)) < size - 400:
        n = len(records)
        records.append({
            "record_id": f"P-{n:06d}", "source_department": "成都市市场监督管理局",
            "decision_number": f"成市监罚〔2025〕{n}号", "violation_type": "虚假宣传",
            "fine_fen": 1_500_000 + n, "decision_date": "2025-06-01", "data_as_of": "2026-11-01",
        })  # fmt: skip
    short = size - len(orjson.dumps(report))
    if short < 0:
        raise ValueError(f"a report-like body needs at least {size - short} bytes")
    report["padding"] = "x" * short
    return report


def create_app(size: int | None = None) -> FastAPI:
    payload = report_like(size or int(os.environ.get(BODY_BYTES_ENV, DEFAULT_BODY_BYTES)))
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/v1/enterprises/{credit_code}/credit-report")
    async def credit_report(credit_code: str) -> Response:
        return Response(orjson.dumps(payload), media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    from gateway.connections import ServeConfig
    from gateway.serving import serve

    # The gateway's own protocol (httptools with its head timeout, connection cap
    # and one send per answer), so the ratio measures the gateway, not how it serves.
    serve(
        ServeConfig(
            "loadtests.bare_app:create_app", factory=True, host=args.host, port=args.port,
            workers=args.workers, loop="uvloop", access_log=False, log_level="warning",
            header_timeout_s=10.0, max_connections=2048,
        )
    )  # fmt: skip


if __name__ == "__main__":
    main()
