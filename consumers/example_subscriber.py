"""An example downstream subscriber of cx.timeline.v1: copy it and make it yours.

    python -m consumers.example_subscriber --group my-team                # new entries from now
    python -m consumers.example_subscriber --group my-team --from-beginning
    python -m consumers.example_subscriber --group my-team --forward http://localhost:9000/in

It is a plain aiokafka consumer in its own consumer group, so it gets every
timeline entry whatever else reads the topic, and Kafka remembers how far the
group got: a restart continues there.  `--from-beginning` / `--from-now` only
matter the first time a group is used (Kafka's `auto_offset_reset`); to read
everything again, use a new group name.

Delivery is at least once: the offsets are committed after the batch was
printed or forwarded, so a crash in between shows those entries again.  Make
what you do with an entry idempotent: `event_id` identifies it.

Each message: key = customer_id, value = one timeline entry (JSON, the schema
is schemas/timeline-entry.v1.json; `cxt schemas timeline-entry.v1` prints it).
When a customer is erased the worker sends a tombstone (value null): it is handed
on as `{"customer_id": <key>, "deleted": true}`; delete what you keep of them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import urllib.request
from collections.abc import Sequence

import aiokafka
import orjson
from aiokafka.errors import KafkaConnectionError

from kernel.errors import CxtError
from kernel.kafka import check_access, make_consumer
from kernel.settings import Settings

AIOKAFKA_CLIENT_ID = f"aiokafka-{aiokafka.__version__}"


def handle(entry: dict, forward_url: str | None) -> None:
    """What this subscriber does with one entry: replace it with your own."""
    if forward_url is None:
        sys.stdout.write(orjson.dumps(entry).decode() + "\n")
        return
    request = urllib.request.Request(forward_url, data=orjson.dumps(entry), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10):  # raises on 4xx/5xx: nothing committed
        pass


async def subscribe(settings: Settings, *, group: str, from_beginning: bool,
                    forward_url: str | None, stop: asyncio.Event) -> int:
    consumer = make_consumer(  # commits only what was handled (`consumer.commit` below)
        settings, settings.topics.timeline, group_id=group,
        auto_offset_reset="earliest" if from_beginning else "latest",
        # aiokafka's own defaults, which this example always ran with:
        client_id=AIOKAFKA_CLIENT_ID, session_timeout_ms=10_000, heartbeat_interval_ms=3_000)
    await consumer.start()
    handled = 0
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            entries = [_entry(r.key, r.value) for rs in batches.values() for r in rs]
            for entry in entries:
                if not await _until_handled(entry, forward_url, stop):
                    return handled  # stopped mid-batch: nothing of it committed
                handled += 1
            if entries:
                await consumer.commit()
    finally:
        await consumer.stop()
        print(f"example_subscriber: handled {handled} entries (group {group!r})",
              file=sys.stderr)
    return handled


def _entry(key: bytes | None, value: bytes | None) -> dict:
    """A timeline entry, or for a tombstone (an erased customer) a deletion notice."""
    if value is None:
        return {"customer_id": (key or b"").decode("utf-8", "replace"), "deleted": True}
    return orjson.loads(value)


async def _until_handled(entry: dict, forward_url: str | None, stop: asyncio.Event) -> bool:
    """Retry one entry until it is handled (True) or we are stopped (False):
    skipping it would lose it."""
    delay = 1.0
    while True:
        try:
            # A blocking call is fine in an example; use an async client in production.
            handle(entry, forward_url)
            return True
        except OSError as exc:  # urllib's URLError and HTTPError are OSErrors
            print(f"example_subscriber: forwarding {entry.get('event_id')} failed ({exc}); "
                  f"retrying in {delay:.0f} s", file=sys.stderr)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                return False
            delay = min(delay * 2, 30.0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m consumers.example_subscriber",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--group", required=True, help="your consumer group (one per team/app)")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--from-beginning", action="store_true",
                       help="a new group starts at the oldest entry still on the topic")
    start.add_argument("--from-now", action="store_true",
                       help="a new group starts with the next entry (the default)")
    parser.add_argument("--forward", metavar="URL", help="POST each entry here instead of printing")
    args = parser.parse_args(argv)

    async def run() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        settings = Settings.from_env()
        await check_access(settings)
        await subscribe(settings, group=args.group,
                        from_beginning=args.from_beginning, forward_url=args.forward, stop=stop)
        return 0

    try:
        return asyncio.run(run())
    except CxtError as exc:  # a setting is wrong, or the brokers refuse our credentials
        print(f"example_subscriber: {exc}", file=sys.stderr)
        return exc.exit_status
    except KafkaConnectionError as exc:
        print(f"example_subscriber: cannot reach Kafka ({exc}); check KAFKA_BOOTSTRAP_SERVERS",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
