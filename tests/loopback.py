"""A scriptable HTTP server on 127.0.0.1 for tests (aiohttp, same event loop)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    method: str
    path_qs: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        import json

        return json.loads(self.body)


Responder = Callable[[Recorded], Reply]


class Loopback:
    """Serves ``routes[path]`` (``path?query`` first, then the path): a fixed Reply, a
    list consumed one per request (the last repeats), or a function of the request."""

    def __init__(self) -> None:
        self.routes: dict[str, Reply | list[Reply] | Responder] = {}
        self.requests: list[Recorded] = []
        self.base_url = ""
        self.delay = 0.0  # seconds each reply waits, to observe concurrency
        self.in_flight = 0
        self.max_in_flight = 0

    def set(self, path: str, reply: Reply | list[Reply] | Responder) -> None:
        self.routes[path] = reply

    def url(self, path: str) -> str:
        return self.base_url + path

    @staticmethod
    def _next(replies: list[Reply]) -> Reply:
        return replies.pop(0) if len(replies) > 1 else replies[0]

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(
            Recorded(request.method, request.path_qs, await request.read(), dict(request.headers))
        )
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            return self._reply(request, self.requests[-1])
        finally:
            self.in_flight -= 1

    def _reply(self, request: web.Request, recorded: Recorded) -> web.Response:
        route = self.routes.get(request.path_qs, self.routes.get(request.path))
        if route is None:
            return web.Response(status=404, text="not found")
        if isinstance(route, Reply):
            reply = route
        elif isinstance(route, list):
            reply = self._next(route)
        else:
            reply = route(recorded)
        body = reply.body.encode() if isinstance(reply.body, str) else reply.body
        return web.Response(status=reply.status, body=body, headers=reply.headers)


@asynccontextmanager
async def serve() -> AsyncIterator[Loopback]:
    loopback = Loopback()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", loopback._handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    loopback.base_url = f"http://127.0.0.1:{port}"
    try:
        yield loopback
    finally:
        await runner.cleanup()
