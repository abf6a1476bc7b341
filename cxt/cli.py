"""`cxt`: the command line of cx-timeline.  `cxt COMMAND --help` explains each."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from aiokafka.errors import KafkaConnectionError, KafkaError
from redis.exceptions import ConnectionError as RedisConnectionError

from cxt.settings import CHANNELS, Settings, SettingsError


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be greater than 0")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must not be negative")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


# -- commands -----------------------------------------------------------------


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from cxt.up import run_up

    return run_up(settings, rate=args.rate, customers=args.customers, demo=not args.no_demo)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from streams.worker import run_worker

    run_worker(settings)
    return 0


def cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    from streams.topics import describe_topics, ensure_topics

    if args.action == "create":
        created = asyncio.run(ensure_topics(settings))
        print(f"created {len(created)} topic(s): {', '.join(created) or '(all existed)'}")
    for name, partitions in asyncio.run(describe_topics(settings)).items():
        print(f"{name:<24} {partitions} partition(s)")
    return 0


def cmd_produce(args: argparse.Namespace, settings: Settings) -> int:
    from cxt.produce import produce_lines

    if args.file != "-" and not Path(args.file).is_file():
        raise UsageError(f"no such file: {args.file}")
    report = asyncio.run(produce_lines(settings, args.file, topic=args.topic,
                                       progress=not args.quiet))
    for error in report.errors[:20]:
        print(f"line {error.line_no}: {error.reason}: {error.message}", file=sys.stderr)
    if len(report.errors) > 20:
        print(f"... and {len(report.errors) - 20} more bad lines", file=sys.stderr)
    print(f"sent {report.sent} event(s), skipped {report.skipped} bad line(s)")
    return 1 if report.errors else 0


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from cxt.simulate import simulate

    try:
        report = asyncio.run(simulate(settings, rate=args.rate, duration=args.duration,
                                      customers=args.customers, seed=args.seed,
                                      publish_customers=not args.no_customers))
    except KeyboardInterrupt:
        return 130
    return 1 if report.failed else 0


def cmd_timeline(args: argparse.Namespace, settings: Settings) -> int:
    from cxt.timeline import BadTime, parse_time, print_json, print_table, read_timeline

    try:
        since = None if args.since is None else parse_time(args.since)
        until = None if args.until is None else parse_time(args.until)
    except BadTime as exc:
        raise UsageError(f"--since/--until: {exc}") from None
    timeline = asyncio.run(read_timeline(settings, args.customer_id, channel=args.channel,
                                         since_ms=since, until_ms=until, limit=args.limit))
    (print_json if args.json else print_table)(timeline)
    return 0


# -- parser ---------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cxt",
        description="cx-timeline: real-time customer timelines for contact centres. "
        "Settings come from environment variables (see README, Configuration).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = sub.add_parser("up", help="start the whole local stack with demo traffic (Ctrl-C stops)",
                        description="Start Apache Kafka, Redis, the stream worker and demo "
                        "traffic on this machine, using KAFKA_BOOTSTRAP_SERVERS and REDIS_URL "
                        "for the ports and CXT_STATE_DIR for the data.")
    up.add_argument("--rate", type=_positive_float, default=20.0,
                    help="demo events per second (default 20)")
    up.add_argument("--customers", type=_positive_int, default=2000,
                    help="demo customers (default 2000)")
    up.add_argument("--no-demo", action="store_true", help="start no demo traffic")
    up.set_defaults(run=cmd_up)

    worker = sub.add_parser("worker", help="run the stream worker (creates missing topics)")
    worker.set_defaults(run=cmd_worker)

    topics = sub.add_parser("topics", help="create or list the project's topics")
    topics.add_argument("action", choices=["create", "list"])
    topics.set_defaults(run=cmd_topics)

    produce = sub.add_parser(
        "produce", help="send JSON lines to Kafka, each to its channel's topic",
        description="Send one JSON object per line.  Each event goes to the topic of its "
        "channel (the part of `type` before the first dot); --topic sends every line to "
        "one topic instead (e.g. customer records).")
    produce.add_argument("file", help="JSON-lines file, or - for standard input")
    produce.add_argument("--topic", help="send every line to this topic as it is")
    produce.add_argument("--quiet", action="store_true", help="no progress line")
    produce.set_defaults(run=cmd_produce)

    simulate = sub.add_parser("simulate", help="send realistic mixed traffic at a steady rate")
    simulate.add_argument("--rate", type=_positive_float, default=50.0,
                          help="events per second (default 50)")
    simulate.add_argument("--duration", type=_non_negative_float, default=60.0,
                          help="seconds to run; 0 runs until Ctrl-C (default 60)")
    simulate.add_argument("--customers", type=_positive_int, default=2000,
                          help="size of the customer base (default 2000)")
    simulate.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    simulate.add_argument("--no-customers", action="store_true",
                          help="do not publish the customer records first")
    simulate.set_defaults(run=cmd_simulate)

    timeline = sub.add_parser("timeline", help="show a customer's timeline, newest first")
    timeline.add_argument("customer_id")
    timeline.add_argument("--channel", choices=CHANNELS)
    timeline.add_argument("--since", help="RFC 3339 time or an age such as 24h, 7d")
    timeline.add_argument("--until", help="RFC 3339 time or an age such as 1h")
    timeline.add_argument("--limit", type=_positive_int, help="at most this many entries")
    timeline.add_argument("--json", action="store_true",
                          help='print {"customer_id": ..., "events": [...]} as JSON')
    timeline.set_defaults(run=cmd_timeline)
    return parser


def _fail(message: str, status: int) -> int:
    print(f"cxt: error: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace, Settings], int] = args.run
    try:
        return run(args, Settings.from_env())
    except (UsageError, SettingsError) as exc:
        return _fail(str(exc), 2)
    except KafkaConnectionError as exc:
        return _fail(f"cannot reach Kafka ({exc}); is it running? "
                     "check KAFKA_BOOTSTRAP_SERVERS", 1)
    except KafkaError as exc:
        return _fail(f"Kafka: {exc}", 1)
    except RedisConnectionError as exc:
        return _fail(f"cannot reach Redis ({exc}); is it running? check REDIS_URL", 1)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from cxt.localstack import PrerequisiteError, ServiceStartError

        if isinstance(exc, PrerequisiteError | ServiceStartError):
            return _fail(str(exc), 1)
        raise


if __name__ == "__main__":
    raise SystemExit(main())
