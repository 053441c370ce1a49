"""The busiest route served straight from the outermost middleware.

FastAPI's own middleware layers, its router and its dependency solving cost
more per request than the report route's own work outside its round trips
(profiled: about a fifth of the worker's CPU). `Direct` answers one route's
requests with the same endpoint and the same caller dependency, and nothing
else in between; every other request goes the usual way. Errors stay in one
place: `GatewayMiddleware` renders a `ProblemError`, a database outage's 503
and anything else's 500, for this route as for every other.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.types import Receive, Scope, Send


class Direct:
    def __init__(self, app: FastAPI, method: str, path: str) -> None:
        found = [
            route
            for route in _api_routes(app.routes)
            if route.path == path and method in (route.methods or ())
        ]
        if len(found) != 1:
            raise ValueError(f"{method} {path}: no single route to serve directly")
        route = found[0]
        # The endpoint takes the request and its caller, nothing FastAPI would
        # have to read or validate: anything else could not be served this way.
        dependant = route.dependant
        if (
            len(dependant.dependencies) != 1
            or dependant.dependencies[0].dependencies
            or dependant.query_params
            or dependant.header_params
            or dependant.body_params
        ):
            raise ValueError(f"{method} {path}: has parameters FastAPI must solve")
        caller = dependant.dependencies[0]
        self.app, self.route, self.method = app, route, method
        self.caller: Any = caller.call
        self.endpoint: Any = route.endpoint

    def match(self, scope: Scope) -> dict[str, str] | None:
        if scope["method"] != self.method:
            return None
        found = self.route.path_regex.match(scope["path"])
        return found.groupdict() if found else None

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, path_params: dict[str, str]
    ) -> None:
        # What Starlette's app and router would have put in the scope.
        scope["app"], scope["route"], scope["path_params"] = self.app, self.route, path_params
        request = Request(scope, receive)
        response = await self.endpoint(request, await self.caller(request))
        await response(scope, receive, send)


def _api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    # FastAPI keeps an included router whole (not its routes copied); none of
    # ours is included under a prefix, so its routes' paths are the app's.
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):
            yield from _api_routes(route.original_router.routes)
