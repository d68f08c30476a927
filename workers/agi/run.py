"""`flask agi serve`: the FastAGI process (Procfile line `agi`)."""
from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis

from workers.ami.counts import InUseCounts
from workers.ami.run import watch_settings

from .decide import CallControl, InboundControl
from .routes import calling_card, inbound, outbound
from .server import SafeApplication, start

log = logging.getLogger("ringledger.agi")


async def build(app, *, counts_prefix: str = "inuse", host: str = "127.0.0.1", port: int = 4573,
                header_timeout: float | None = None, command_timeout: float | None = None):
    """Start the server; returns (asyncio server, CallControl, redis client, SafeApplication)."""
    client = aioredis.from_url(app.config["REDIS_URL"])
    control = CallControl(app, InUseCounts(client, counts_prefix),
                          threads=app.config.get("AGI_THREADS", 8))
    agi = SafeApplication(header_timeout=header_timeout, command_timeout=command_timeout)
    agi.add_route("outbound", outbound(control))
    agi.add_route("inbound", inbound(InboundControl(control.policy)))
    agi.add_route("callingcard", calling_card(control))
    server = await start(agi, host, port)
    if control.fast is not None:     # an account's notice drops its cached profile at once
        control.fast.listen(app.config["REDIS_URL"])
    control.warm_up()
    return server, control, client, agi


def serve(app) -> None:
    host, port = app.config.get("AGI_HOST", "0.0.0.0"), int(app.config.get("AGI_PORT", 4573))

    async def main():
        server, control, client, _ = await build(app, host=host, port=port,
                                              counts_prefix=watch_settings(app).counts_prefix)
        log.info("FastAGI listening on %s:%d", host, port)
        try:
            async with server:
                await server.serve_forever()
        finally:
            control.close()
            await client.aclose()

    logging.basicConfig(level=logging.INFO)
    asyncio.run(main())
