"""Run the stream worker in this process (`cxt worker`)."""

from __future__ import annotations

import asyncio
import gc

import faust
import uvloop

from kernel.access import check_access
from kernel.settings import Settings
from kernel.topics import ensure_topics
from streams.app import create_app


def run_worker(settings: Settings) -> None:
    """Create missing topics, then run the faust worker until SIGINT/SIGTERM."""
    # uvloop: measurably cheaper per event than the default selector loop.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(check_access(settings))  # own loop: see check_access_at_start
    loop.run_until_complete(ensure_topics(settings))
    app, inbound = create_app(settings)
    # A batch allocates tens of thousands of short-lived objects, nearly none in cycles:
    # with the default thresholds the collector runs every few hundred of them and
    # regularly walks the whole heap (faust, aiokafka, ...).  Frozen, that heap is skipped.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    # faust's worker starts `inbound` before the app and stops it after: it owns the
    # producer (`Outbound`) that the agents publish through too.
    worker = faust.Worker(app, inbound, loop=loop, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
