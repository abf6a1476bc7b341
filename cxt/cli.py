"""`cxt`: the command line of cx-timeline.  `cxt COMMAND --help` explains each."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import orjson
from aiokafka.errors import KafkaConnectionError, KafkaError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from domain.alerts import CALLBACK_OUTCOMES, RESOLVE_CATEGORIES, STATUSES
from domain.rules import CATEGORIES
from domain.survey_metrics import MAX_DAYS, MAX_HOURS
from kernel.errors import CxtError, InputError
from kernel.kafka import access_problem as kafka_access_problem
from kernel.redis_client import access_problem as redis_access_problem
from kernel.settings import CHANNELS, ROLES, Settings
from usecases.alerts import ALERT_KINDS, DEFAULT_PAGE, MAX_PAGE

if TYPE_CHECKING:
    from domain.records import AlertAction


class UsageError(InputError):
    """Bad input from the user: printed as one line, exit status 2."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be greater than 0")
    return value


def _int_up_to(most: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _positive_int(text)
        if value > most:
            raise argparse.ArgumentTypeError(f"{value} is more than {most}")
        return value
    return parse


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


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a TCP port (1-65535)")
    return value


def _subject(text: str) -> str:
    if not text or ":" in text or "," in text or any(c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"{text!r}: a subject has no spaces, ':' or ','")
    return text


# -- commands -----------------------------------------------------------------


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from cxt.up import run_up

    return run_up(settings, rate=args.rate, customers=args.customers, demo=not args.no_demo)


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from streams.worker import run_worker

    run_worker(settings)
    return 0


def cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.server import serve

    changes: dict[str, object] = {}
    if args.host:
        changes["dashboard_host"] = args.host
    if args.port is not None:
        changes["dashboard_port"] = args.port
    serve(settings.with_(**changes))
    return 0


def cmd_tokens(args: argparse.Namespace, settings: Settings) -> int:
    from cxt.tokens import new_token_line
    from domain.rules import load_rules

    if args.role == "advisor":
        rules = load_rules(settings.alert_rules_path)
        if args.subject not in rules.actors:
            # Still made: the actor may be added to the rules file next.
            print(f"cxt: warning: {args.subject!r} is not in the actors list of {rules.source}; "
                  "this advisor can read alerts but every action will be refused until it is "
                  "added there", file=sys.stderr)
    expires_ms = None
    if args.expires is not None:
        expires_ms = _time_ahead("--expires", args.expires)
    print(new_token_line(args.role, args.subject, expires_ms))
    return 0


def _time_ahead(option: str, text: str) -> int:
    """An RFC 3339 time, or an age read forwards ("30d": 30 days from now), in epoch ms."""
    import time

    from kernel.times import BadTime, epoch_ms, parse_rfc3339, parse_time

    try:
        at = epoch_ms(parse_rfc3339(text))
    except ValueError:
        try:
            ago = parse_time(text)
        except BadTime as exc:
            raise UsageError(f"{option}: {exc}") from None
        now = int(time.time() * 1000)
        at = now + (now - ago)
    if at <= int(time.time() * 1000):
        raise UsageError(f"{option}: {text!r} is not in the future")
    return at


def cmd_schemas(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.catalog import UnknownSchema, print_catalog, print_schema

    try:
        if args.name:
            print_schema(args.name, sys.stdout)
        else:
            print_catalog(sys.stdout)
    except UnknownSchema as exc:
        raise UsageError(str(exc)) from None
    return 0


def cmd_summaries(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.summary import run_summaries

    run_summaries(settings)
    return 0


def cmd_webhooks(args: argparse.Namespace, settings: Settings) -> int:
    from consumers.webhooks import run_webhooks

    return run_webhooks(settings, check_only=args.action == "check")


def cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    from kernel.topics import describe_topics, ensure_topics

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
    except BrokenPipeError:
        # The reader went away (`cxt schemas | head`): no traceback for that. Point
        # stdout at /dev/null so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 1 if report.failed else 0


def _time_option(option: str, text: str | None) -> int | None:
    from kernel.times import BadTime, parse_time

    if text is None:
        return None
    try:
        return parse_time(text)
    except BadTime as exc:
        raise UsageError(f"{option}: {exc}") from None


def cmd_deadletters(args: argparse.Namespace, settings: Settings) -> int:
    from cxt import deadletters as printing
    from kernel.status import StatusLine
    from usecases import deadletters as cases

    if args.deadletter_action == "show":
        printing.print_one(asyncio.run(cases.find(settings, args.id)), args.json)
        return 0
    wanted = cases.Filter(frozenset(args.reason), frozenset(args.topic),
                          _time_option("--since", args.since), _time_option("--until", args.until))
    if args.deadletter_action == "replay":
        unknown = set(args.topic) - cases.replayable_topics(settings)
        if unknown:
            raise UsageError(f"--topic {', '.join(sorted(unknown))}: not a topic the worker "
                             "reads, so nothing from it can be replayed")
        status = StatusLine()
        report = asyncio.run(cases.replay(
            settings, wanted, chunk=args.chunk, dry_run=args.dry_run,
            progress=lambda r: status.update(printing.progress_line(r))))
        status.done()
        print(("dry run: would have " if args.dry_run else "") + report.line())
        return 0

    async def listing() -> int:
        shown = 0
        async for letter in cases.read(settings, wanted):
            if shown == 0 and not args.json:
                printing.print_header()
            (printing.print_json_line if args.json else printing.print_row)(letter)
            shown += 1
            if args.limit is not None and shown >= args.limit:
                break
        if shown == 0 and not args.json:
            print("no dead letters match", file=sys.stderr)
        return shown

    asyncio.run(listing())
    return 0


def cmd_timeline(args: argparse.Namespace, settings: Settings) -> int:
    from cxt.timeline import print_json, print_table
    from usecases.timeline import customer_known, read_timeline

    since = _time_option("--since", args.since)
    until = _time_option("--until", args.until)
    if since is not None and until is not None and until < since:
        raise UsageError(f"--until {args.until} is earlier than --since {args.since}")
    timeline = asyncio.run(read_timeline(settings, args.customer_id, channel=args.channel,
                                         since_ms=since, until_ms=until, limit=args.limit))
    if not timeline["events"] and not asyncio.run(customer_known(settings, args.customer_id)):
        return _fail(f"no customer {args.customer_id!r}: no customer record and no timeline "
                     "entries under that id", 1)
    (print_json if args.json else print_table)(timeline)
    return 0


def cmd_alerts(args: argparse.Namespace, settings: Settings) -> int:
    from cxt import alerts as cli_alerts
    from domain.alerts import ACTION_OF
    from usecases import alerts as alert_cases

    if args.alert_action is None:
        return _list_alerts(args, settings)
    if args.alert_action == "show":
        alert = asyncio.run(alert_cases.show_alert(settings, args.alert_id))
    else:
        action: AlertAction = {"alert_id": args.alert_id, "actor": args.actor,
                               "action": ACTION_OF[args.alert_action], "note": args.note}
        if args.alert_action == "callback":
            action["outcome"] = args.outcome
        if args.alert_action == "resolve" and args.category:
            action["category"] = args.category
        try:
            alert = asyncio.run(alert_cases.act(settings, action))
        except alert_cases.ActionRefused as exc:
            if exc.reason != "category_required":
                raise
            # Refused before anything was published; the fix is an option away.
            raise UsageError(f"cannot resolve alert {args.alert_id}: its category is "
                             "unclassified; name the cause with --category, one of "
                             f"{', '.join(RESOLVE_CATEGORIES)}") from None
    if args.json:
        print(orjson.dumps(alert).decode())
    else:
        cli_alerts.print_alert(alert)
    return 0


def _list_alerts(args: argparse.Namespace, settings: Settings) -> int:
    from cxt import alerts as cli_alerts
    from usecases import alerts as alert_cases

    statuses = {s.strip() for s in args.status.split(",") if s.strip()} if args.status else None
    unknown = (statuses or set()) - set(STATUSES)
    if unknown or statuses == set():
        raise UsageError(f"--status: unknown status {', '.join(sorted(unknown)) or '(none)'}; "
                         f"choose from {', '.join(STATUSES)}")
    found = asyncio.run(alert_cases.list_alerts(
        settings, statuses=statuses, category=args.category, queue=args.queue,
        agent=args.agent, limit=args.limit, before=args.before, kind=args.kind))
    if args.json:
        print(orjson.dumps({"alerts": found.alerts, "next": found.next,
                            "matching": found.matching}).decode())
    else:
        cli_alerts.print_list(found)
    return 0


def cmd_customers(args: argparse.Namespace, settings: Settings) -> int:
    from cxt import customers
    from usecases import customers as customer_cases

    try:
        customer_cases.check_customer_id(args.customer_id)
        if args.customer_action == "export":
            return customers.export(settings, args.customer_id, args.output)
        if args.customer_action == "merge-preview":
            customer_cases.check_customer_id(args.into, "into")
            preview = asyncio.run(customer_cases.preview_merge(settings, args.customer_id,
                                                               args.into))
        else:
            view = asyncio.run(customer_cases.view_customer(settings, args.customer_id))
    except customer_cases.BadCustomerInput as exc:
        raise UsageError(str(exc) if exc.field == "customer_id" else f"{exc.field}: {exc}"
                         ) from None
    except customer_cases.MergeRefused as exc:
        raise UsageError(f"no merge to preview: {exc}") from None
    if args.customer_action == "merge-preview":
        if args.json:
            print(orjson.dumps(customer_cases.preview_json(preview)).decode())
        else:
            customers.print_preview(preview)
        return 0
    if args.customer_action == "show":
        if not view.known:
            return _fail(f"no customer {args.customer_id!r}: no record, no timeline and no "
                         "alerts under that id", 1)
        if args.json:
            print(orjson.dumps(customer_cases.view_json(view)).decode())
        else:
            customers.print_view(view)
        return 0
    if not customers.confirm_erase(args.customer_id, view, assume_yes=args.yes):
        return _fail(f"not erased: the answer was not {args.customer_id!r}", 1)
    if asyncio.run(customer_cases.erase_customer(settings, args.customer_id)):
        print(f"erased {args.customer_id}: record, timeline and alerts deleted; tombstones "
              "published downstream")
    else:
        print(f"published the erasure of {args.customer_id} (nothing was stored here; "
              "downstream copies drop it on the null record)")
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from cxt import report

    what = getattr(args, "report_what", None)
    if what is None:
        report.survey_report(settings, hours=args.hours, days=args.days, channel=args.channel,
                             queue=args.queue, agent=args.agent, as_json=args.json)
    elif what == "contacts":
        report.contact_report(settings, hours=args.hours, days=args.days,
                              channel=args.channel, queue=args.queue, intent=args.intent,
                              as_json=args.json)
    elif what == "routing":
        report.routing_report(settings, seed=args.seed, contacts=args.contacts,
                              rules=args.rules, as_json=args.json)
    else:
        report.early_warning_report(settings, limit=args.limit,
                                    window_s=args.window_hours * 3600, as_json=args.json)
    return 0


def cmd_rules(args: argparse.Namespace, settings: Settings) -> int:
    from domain.rules import load_rules

    rules = load_rules(args.rules or settings.alert_rules_path)
    if args.action == "check":
        from domain.signal_config import load_signals

        print(f"{rules.source}: valid")
        print(rules.describe())
        signals = load_signals(args.signals or settings.signals_path)
        print(f"{signals.source}: valid")
        print(signals.describe())
        return 0
    if not args.samples:
        raise UsageError("rules explain needs a JSON-lines file of surveys (or - for stdin)")
    from cxt.explain import explain_lines

    source = sys.stdin.buffer if args.samples == "-" else _open_or_fail(args.samples)
    with source:
        explained = explain_lines(rules, source)
    for item in explained:
        print(f"line {item.line_no}: {item.text}", file=sys.stderr if item.bad else sys.stdout)
    bad = sum(item.bad for item in explained)
    if bad:
        return _fail(f"{bad} line(s) are not survey objects", 1)
    return 0


def _open_or_fail(path: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError:  # a NUL byte: no file can have that name
        raise UsageError(f"cannot read {path!r}: a file name has no NUL byte") from None


# -- parser ---------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cxt",
        description="cx-timeline: real-time customer timelines for contact centres. "
        "Settings come from environment variables (see docs/configuration.md).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    up = sub.add_parser("up", help="start the whole local stack with demo traffic (Ctrl-C stops)",
                        description="Start Apache Kafka, Redis, the stream worker and demo "
                        "traffic on this machine, using KAFKA_BOOTSTRAP_SERVERS and REDIS_URL "
                        "for the ports and CXT_STATE_DIR for the data.")
    up.add_argument("--rate", type=_positive_float, default=20.0,
                    help="demo events per second (default 20)")
    # Many, so a customer's contacts are as sparse as a real one's over a demo's hour or
    # two: with 2,000, every fourth contact was soon a repeat (3 about one intent).
    up.add_argument("--customers", type=_positive_int, default=20_000,
                    help="demo customers (default 20000)")
    up.add_argument("--no-demo", action="store_true", help="start no demo traffic")
    up.set_defaults(run=cmd_up)

    worker = sub.add_parser("worker", help="run the stream worker (creates missing topics)")
    worker.set_defaults(run=cmd_worker)

    dashboard = sub.add_parser(
        "dashboard", help="serve the dashboard: pages, JSON API, websockets (Ctrl-C stops)",
        description="Serve the advisory and agent pages, the JSON API and the live "
        "websockets on CXT_DASHBOARD_HOST:CXT_DASHBOARD_PORT.  Needs API tokens "
        "(CXT_API_TOKENS or CXT_API_TOKENS_FILE).")
    dashboard.add_argument("--host", help="bind address (default CXT_DASHBOARD_HOST)")
    dashboard.add_argument("--port", type=_port, help="port (default CXT_DASHBOARD_PORT)")
    dashboard.set_defaults(run=cmd_dashboard)

    tokens = sub.add_parser(
        "tokens", help="make an API token line (role:subject:token) for the tokens file",
        description="Print a new random token as role:subject:token, the format of "
        "CXT_API_TOKENS and of the lines of CXT_API_TOKENS_FILE.")
    tokens.add_argument("action", choices=["new"])
    tokens.add_argument("role", choices=ROLES)
    tokens.add_argument("subject", type=_subject,
                        help="advisor: actor id (adv-ana); agent: agent id (A-007); "
                        "service: a name")
    tokens.add_argument("--expires", metavar="WHEN",
                        help="refused from then on: an RFC 3339 time, or a time from now "
                        "such as 30d or 12h")
    tokens.set_defaults(run=cmd_tokens)

    schemas = sub.add_parser(
        "schemas", help="list the event schemas and their topics, or print one",
        description="Without NAME: every JSON Schema of the contract, with its topics "
        "(from schemas/asyncapi.json).  With NAME (e.g. alert.v1): that schema as JSON.")
    schemas.add_argument("name", nargs="?", help="a schema name from the list, e.g. alert.v1")
    schemas.set_defaults(run=cmd_schemas)

    summaries = sub.add_parser(
        "summaries", help="keep cx.customer-summary.v1 up to date (Ctrl-C stops)",
        description="Consume the timeline, alerts, customer and identity topics and publish one "
        "summary per customer on the compacted topic cx.customer-summary.v1 (a tombstone "
        "when the customer is erased).")
    summaries.set_defaults(run=cmd_summaries)

    webhooks = sub.add_parser(
        "webhooks", help="deliver topics to the HTTP endpoints of the webhooks file",
        description="run: deliver each endpoint's topics (signed, retried, in order per "
        "customer; given up to cx.webhook-deadletter.v1).  check: validate the file "
        "(CXT_WEBHOOKS) and list the endpoints.")
    webhooks.add_argument("action", choices=["run", "check"], nargs="?", default="run")
    webhooks.set_defaults(run=cmd_webhooks)

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
                          help="do not publish the customer and agent records first")
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
    _add_alert_commands(sub)
    _add_deadletter_commands(sub)
    return parser


def _add_deadletter_commands(sub: argparse._SubParsersAction) -> None:
    letters = sub.add_parser(
        "deadletters", help="list, show or replay dead letters (rejected inbound records)",
        description="Dead letters are the inbound records the worker rejected, with the "
        "reason (docs/contract.md).  Once the producer is fixed, `replay` sends the "
        "original records back to their topics; each dead letter at most once.")
    actions = letters.add_subparsers(dest="deadletter_action", metavar="ACTION",
                                     required=True)
    for name, text in (("list", "the dead letters, oldest first per partition"),
                       ("replay", "send the originals back to their topics, with progress")):
        step = actions.add_parser(name, help=text)
        step.add_argument("--reason", action="append", default=[],
                          help="only this reason (repeat for several), e.g. schema_invalid")
        step.add_argument("--topic", action="append", default=[],
                          help="only records from this topic (repeat for several)")
        step.add_argument("--since", help="rejected at or after: RFC 3339 or an age (24h, 7d)")
        step.add_argument("--until", help="rejected before: RFC 3339 or an age")
        if name == "list":
            step.add_argument("--limit", type=_positive_int, help="at most this many")
            step.add_argument("--json", action="store_true", help="one JSON object per line")
        else:
            step.add_argument("--dry-run", action="store_true",
                              help="count what would be replayed; send nothing")
            step.add_argument("--chunk", type=_int_up_to(10_000), default=500,
                              help="records sent and marked together (default 500)")
    show = actions.add_parser("show", help="one dead letter, with the rejected record")
    show.add_argument("id", help="partition:offset, as `list` prints it")
    show.add_argument("--json", action="store_true")
    letters.set_defaults(run=cmd_deadletters)


def _add_alert_commands(sub: argparse._SubParsersAction) -> None:
    alerts = sub.add_parser(
        "alerts", help="list alerts (bottom-2-box, negative interaction), or act on one "
        "(ack, callback, resolve)",
        description="Without an action: list alerts, newest first.  Actions go through "
        "the cx.alert-actions.v1 topic and wait until the worker applied them.")
    alerts.add_argument("--status", help=f"comma-separated, of: {', '.join(STATUSES)}")
    alerts.add_argument("--kind", choices=ALERT_KINDS,
                        help="bottom_2_box (raised by a survey) or negative_interaction "
                        "(raised by signals in the interactions)")
    alerts.add_argument("--category", choices=CATEGORIES)
    alerts.add_argument("--queue")
    alerts.add_argument("--agent", help="agent_id")
    alerts.add_argument("--limit", type=_int_up_to(MAX_PAGE), default=DEFAULT_PAGE,
                        help=f"alerts per page (default {DEFAULT_PAGE}, at most {MAX_PAGE})")
    alerts.add_argument("--before", metavar="ALERT_ID",
                        help="the next page: the alerts older than this one (the list's "
                        "last line names it)")
    alerts.add_argument("--json", action="store_true")
    alerts.set_defaults(run=cmd_alerts)
    actions = alerts.add_subparsers(dest="alert_action", metavar="ACTION")
    show = actions.add_parser("show", help="one alert with its context and history")
    show.add_argument("alert_id")
    show.add_argument("--json", action="store_true")
    for name, text in (("ack", "acknowledge: you own the follow-up"),
                       ("callback", "record a call-back to the customer"),
                       ("resolve", "close the alert (after ack)")):
        step = actions.add_parser(name, help=text)
        step.add_argument("alert_id")
        step.add_argument("--actor", required=True, help="your id from the rules file's actors")
        step.add_argument("--note", help="free text for the record")
        step.add_argument("--json", action="store_true")
        if name == "callback":
            step.add_argument("--outcome", required=True, choices=CALLBACK_OUTCOMES)
        if name == "resolve":
            step.add_argument("--category", choices=RESOLVE_CATEGORIES,
                              help="the cause as finally judged; required when the alert "
                              "is unclassified")

    customers = sub.add_parser(
        "customers", help="show what is held about a customer, export it, preview a merge, "
        "or erase the customer",
        description="show: the customer record, its identifiers and every customer that "
        "claims each, its merge and the customers merged into it, the provisional and "
        "ambiguous profiles linked into its timeline, its alerts.  merge-preview: what a "
        "record merging the customer into another would move (reads only).  erase: "
        "publish the null record on the customers topic (the contract's erasure) and wait "
        "until the worker has deleted the customer's data; asks first unless --yes.")
    customer_actions = customers.add_subparsers(dest="customer_action", metavar="ACTION",
                                                required=True)
    show_customer = customer_actions.add_parser(
        "show", help="the record, identifiers and their claimants, merges, links")
    show_customer.add_argument("customer_id")
    show_customer.add_argument("--json", action="store_true")
    preview = customer_actions.add_parser(
        "merge-preview", help="what merging CUSTOMER_ID into INTO would move",
        description="What a customer record for CUSTOMER_ID with merged_into: INTO would "
        "move into INTO's timeline (or the timeline INTO is merged into): entries by "
        "channel, alerts, identifiers.  Reads only; publishes nothing.  A merge the worker "
        "would refuse (a loop) or has made already is refused here (exit 2).")
    preview.add_argument("customer_id")
    preview.add_argument("into")
    preview.add_argument("--json", action="store_true")
    export = customer_actions.add_parser(
        "export", help="everything held about the customer, as one JSON document",
        description="For a data-subject request: the customer record, identifiers and who "
        "claims them, every timeline entry, alerts in full, the CRM summary state, notes, "
        "preferences, contact and routing memory and merge links, and the same for every "
        "customer merged into it; `keys` names each Redis key read.  Reads only.  Exits 1 "
        "when nothing is held about the id.")
    export.add_argument("customer_id")
    export.add_argument("--output", "-o", metavar="FILE",
                        help="write it to FILE (created, readable by you only) instead of "
                        "standard output; - is standard output")
    erase = customer_actions.add_parser("erase", help="erase the customer (cannot be undone)")
    erase.add_argument("customer_id")
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    customers.set_defaults(run=cmd_customers)

    report = sub.add_parser(
        "report", help="survey responses hour by hour (or day by day): bottom/top-2-box; "
        "also contact reasons, the early-warning figure and the routing trial",
        description="Without REPORT: the survey report, counting surveys in the hour (UTC) "
        "of their occurred_at, late ones too.  `cxt report contacts`: contacts per intent; "
        "`cxt report early-warning`: negative-interaction alerts ahead of bottom-2-box "
        "surveys.  `cxt report routing`: the routing hint against random assignment on "
        "seeded traffic (offline).")
    span = report.add_mutually_exclusive_group()
    span.add_argument("--hours", type=_int_up_to(MAX_HOURS),
                      help=f"hour by hour, the last N hours (default 24, at most {MAX_HOURS})")
    span.add_argument("--days", type=_int_up_to(MAX_DAYS),
                      help=f"day by day, the last N days (at most {MAX_DAYS})")
    report.add_argument("--channel", choices=CHANNELS, help="channel of the rated contact")
    report.add_argument("--queue")
    report.add_argument("--agent", help="agent_id")
    report.add_argument("--json", action="store_true")
    report.set_defaults(run=cmd_report)
    _add_report_commands(report)

    rules = sub.add_parser(
        "rules", help="check the alert category rules, or explain how samples classify",
        description="check: validate the rules file and the signals file and list their "
        "rules and signals.  explain FILE: "
        "classify each survey (envelope or payload, JSON lines) and say which rule decided.")
    rules.add_argument("action", choices=["check", "explain"])
    rules.add_argument("samples", nargs="?", help="explain: JSON-lines file of surveys, or -")
    rules.add_argument("--rules", help="the rules file (default: CXT_ALERT_RULES)")
    rules.add_argument("--signals", metavar="FILE",
                       help="check: the negative-interaction signals file (default: CXT_SIGNALS)")
    rules.set_defaults(run=cmd_rules)


MAX_TRIAL_CONTACTS = 1_000_000  # about 100 s for both arms


def _add_report_commands(report: argparse.ArgumentParser) -> None:
    """`cxt report contacts` and `cxt report early-warning`; plain `cxt report` stays the
    survey report."""
    from usecases.report import EARLY_WARNING_SCAN

    what = report.add_subparsers(dest="report_what", metavar="REPORT")
    contacts = what.add_parser(
        "contacts", help="why customers contact us: contacts per intent, repeat rate, "
        "share with a negative signal",
        description="Counts each contact (a call's started and ended events are one) in "
        "the UTC hour of its first event, per intent; repeat: the Nth contact about its "
        "intent (the repeat-contact signal); negative: any negative signal fired on it.")
    span = contacts.add_mutually_exclusive_group()
    span.add_argument("--hours", type=_int_up_to(MAX_HOURS),
                      help=f"hour by hour, the last N hours (default 24, at most {MAX_HOURS})")
    span.add_argument("--days", type=_int_up_to(MAX_DAYS),
                      help=f"day by day, the last N days (at most {MAX_DAYS})")
    contacts.add_argument("--channel", choices=CHANNELS)
    contacts.add_argument("--queue", help="a queue; - for contacts that named none")
    contacts.add_argument("--intent", help="an intent; - for contacts that named none")
    contacts.add_argument("--json", action="store_true")
    warning = what.add_parser(
        "early-warning", help="how many bottom-2-box customers had a negative-interaction "
        "alert first, and how much earlier",
        description="Reads the newest alerts; per customer, the first bottom-2-box alert "
        "counts, and a negative-interaction alert of the same customer raised before it "
        "(within --window-hours) is the early warning.")
    warning.add_argument("--limit", type=_int_up_to(50_000), default=EARLY_WARNING_SCAN,
                         help=f"how many of the newest alerts to read (default "
                         f"{EARLY_WARNING_SCAN}, at most 50000)")
    warning.add_argument("--window-hours", type=_int_up_to(24 * MAX_DAYS), default=24 * 7,
                         help="how long before the survey a warning counts (default 168)")
    warning.add_argument("--json", action="store_true")
    routing = what.add_parser(
        "routing", help="does the routing hint help? bottom-2-box share with the hint's top "
        "agent against a random free agent, on the same seeded traffic (offline)",
        description="Draws one seeded stream of offered calls and chats from the demo "
        "traffic's model (its customers, agents with skills and languages, intents) and "
        "assigns it twice: to a random free agent, and to the routing hint's top free "
        "agent (the outcomes so far in the run as its history).  Surveys follow the "
        "traffic's model: bottom-2-box more often when the agent lacks the skill or the "
        "customer's language.  Needs neither Kafka nor Redis.")
    routing.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    routing.add_argument("--contacts", type=_int_up_to(MAX_TRIAL_CONTACTS), default=20_000,
                         help=f"offered contacts per arm (default 20000, at most "
                         f"{MAX_TRIAL_CONTACTS})")
    routing.add_argument("--rules", metavar="FILE",
                         help="the routing file (default: CXT_ROUTING_RULES)")
    routing.add_argument("--json", action="store_true")


def _fail(message: str, status: int) -> int:
    print(f"cxt: error: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace, Settings], int] = args.run
    settings: Settings | None = None
    try:
        settings = Settings.from_env()
        return run(args, settings)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`cxt schemas | head`): no traceback for that. Point
        # stdout at /dev/null so the interpreter's final flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        known = _known_error(exc)
        if known is None:
            raise
        if settings is not None:
            problem = _access_problem(exc, settings)
            if problem is not None:
                return _fail(problem, 2)
        return _fail(*known)


def _access_problem(exc: Exception, settings: Settings) -> str | None:
    """A refused password, an untrusted certificate or a narrow ACL, named: aiokafka says
    only "Unable to bootstrap", and redis-py files some of these as connection errors."""
    if isinstance(exc, KafkaConnectionError):
        return asyncio.run(kafka_access_problem(settings))
    if isinstance(exc, RedisError):
        return redis_access_problem(exc, settings.redis_url, settings.redis_prefix)
    return None


def _known_error(exc: Exception) -> tuple[str, int] | None:
    """The one place that turns an expected failure into a message and an exit status
    (2: the input or the configuration is wrong; 1: the action failed)."""
    if isinstance(exc, CxtError):
        return str(exc), exc.exit_status
    if isinstance(exc, KafkaConnectionError):
        return (f"cannot reach Kafka ({exc}); is it running? check KAFKA_BOOTSTRAP_SERVERS", 1)
    if isinstance(exc, KafkaError):
        return f"Kafka: {exc}", 1
    if isinstance(exc, RedisConnectionError):
        return f"cannot reach Redis ({exc}); is it running? check REDIS_URL", 1
    if isinstance(exc, RedisClusterException):
        return f"Redis Cluster: {exc} (CXT_REDIS_CLUSTER is on; check REDIS_URL)", 1
    if isinstance(exc, RedisError):  # e.g. a password Redis refuses
        return f"Redis: {exc}; check REDIS_URL", 1
    return None


if __name__ == "__main__":
    raise SystemExit(main())
