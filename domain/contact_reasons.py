"""Why customers contact us: contacts per intent per hour, with repeat and negative counts.

Pure functions shared by the worker (which counts contacts into Redis through
store.negatives) and the report (`cxt report contacts`,
GET /api/metrics/contacts), which reads the counters back as rows.

A contact is one call, chat, e-mail thread or social post
(docs/negative-interactions.md): its events all carry the same `contact`
("call:CALL-9"), and it is counted once, in the UTC hour of the first of its
events to arrive.  It counts as a repeat when the repeat-contact rule saw it as
the Nth contact about its intent, and as negative when any signal fired on it.

Counter fields.  One hash per hour bucket ("2026112210", as domain.survey_metrics):

    "c|<channel>|<queue>|<intent>"  contacts
    "r|<channel>|<queue>|<intent>"  of which repeat contacts
    "n|<channel>|<queue>|<intent>"  of which with a negative signal
    "alerts|negative_interaction"   negative-interaction alerts raised in the hour

so filters by channel, queue and intent are sums over fields at read time.  An
unknown queue or intent is stored empty; a `|` inside a value is written
"%7C" (and `%` as "%25") so it cannot shift the later parts.  Intents are
grouped trimmed and lower-cased, as the alert grouping does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from domain.survey_metrics import Counters

SEP = "|"
CONTACTS, REPEATS, NEGATIVES = "c", "r", "n"
NEGATIVE_ALERTS = "alerts|negative_interaction"
# How a missing queue or intent is shown, and the filter value that selects it (the
# survey report's convention).
NONE_SHOWN = "-"


def normal_intent(intent: str | None) -> str:
    return (intent or "").strip().lower()


def _escape(value: str) -> str:
    return value.replace("%", "%25").replace(SEP, "%7C")


def _unescape(value: str) -> str:
    return value.replace("%7C", SEP).replace("%25", "%")


@lru_cache(maxsize=4096)  # once per contact on the worker's hot path; few combinations
def dimensions(channel: str, queue: str | None, intent: str | None) -> str:
    """"<channel>|<queue>|<intent>", each part escaped; the suffix of a counter field."""
    return SEP.join(_escape(part) for part in
                    (channel.strip(), (queue or "").strip(), normal_intent(intent)))


def split_field(name: str) -> tuple[str, str, str, str] | None:
    """(metric, channel, queue, intent) of a counter field; None for any other field."""
    parts = name.split(SEP)
    if len(parts) != 4 or parts[0] not in (CONTACTS, REPEATS, NEGATIVES):
        return None
    metric, channel, queue, intent = parts
    return metric, _unescape(channel), _unescape(queue), _unescape(intent)


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class IntentRow:
    intent: str  # NONE_SHOWN when the contacts named none
    contacts: int
    repeat: int
    negative: int

    @property
    def repeat_rate(self) -> float | None:
        return self.repeat / self.contacts if self.contacts else None

    @property
    def negative_share(self) -> float | None:
        return self.negative / self.contacts if self.contacts else None


@dataclass(frozen=True)
class ContactRow:
    period: str  # "2026-11-22 10:00" or "2026-11-22"
    contacts: int
    repeat: int
    negative: int
    negative_alerts: int  # all raised in the period: the filters do not apply to them
    by_intent: list[IntentRow] = field(default_factory=list)

    @property
    def repeat_rate(self) -> float | None:
        return self.repeat / self.contacts if self.contacts else None

    @property
    def negative_share(self) -> float | None:
        return self.negative / self.contacts if self.contacts else None


def _matches(want: str | None, got: str) -> bool:
    return want is None or (got == "" if want == NONE_SHOWN else want == got)


def aggregate(period: str, counters: Counters, *, channel: str | None = None,
              queue: str | None = None, intent: str | None = None) -> ContactRow:
    """One row from a bucket's (or several buckets' summed) counters, counting only the
    fields that match the filters (None: all; "-": those that named none)."""
    wanted_intent = None if intent is None else (
        NONE_SHOWN if intent == NONE_SHOWN else normal_intent(intent))
    per_intent: dict[str, dict[str, int]] = {}
    alerts = 0
    for raw, value in counters.items():
        name = raw.decode() if isinstance(raw, bytes) else raw
        if name == NEGATIVE_ALERTS:
            alerts += int(value)
            continue
        parts = split_field(name)
        if parts is None:
            continue
        metric, got_channel, got_queue, got_intent = parts
        if not (_matches(channel, got_channel) and _matches(queue, got_queue)
                and _matches(wanted_intent, got_intent)):
            continue
        totals = per_intent.setdefault(got_intent or NONE_SHOWN, dict.fromkeys("crn", 0))
        totals[metric] += int(value)
    by_intent = sorted((IntentRow(name, t["c"], t["r"], t["n"])
                        for name, t in per_intent.items()),
                       key=lambda row: (-row.contacts, row.intent))
    return ContactRow(period, sum(r.contacts for r in by_intent),
                      sum(r.repeat for r in by_intent), sum(r.negative for r in by_intent),
                      alerts, by_intent)


def total_row(rows: Iterable[ContactRow], label: str = "total") -> ContactRow:
    """All rows together, intent by intent."""
    merged: dict[str, list[int]] = {}
    rows = list(rows)
    for row in rows:
        for r in row.by_intent:
            sums = merged.setdefault(r.intent, [0, 0, 0])
            sums[0] += r.contacts
            sums[1] += r.repeat
            sums[2] += r.negative
    by_intent = sorted((IntentRow(name, *sums) for name, sums in merged.items()),
                       key=lambda row: (-row.contacts, row.intent))
    return ContactRow(label, sum(r.contacts for r in rows), sum(r.repeat for r in rows),
                      sum(r.negative for r in rows), sum(r.negative_alerts for r in rows),
                      by_intent)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def rows_to_json(rows: Iterable[ContactRow]) -> list[dict]:
    """Rows as JSON-ready dicts (rates and shares 0..1; None where there were no contacts)."""
    return [
        {
            "period": row.period, "contacts": row.contacts, "repeat": row.repeat,
            "repeat_rate": _rounded(row.repeat_rate), "negative": row.negative,
            "negative_share": _rounded(row.negative_share),
            "negative_alerts": row.negative_alerts,
            "by_intent": [
                {"intent": r.intent, "contacts": r.contacts, "repeat": r.repeat,
                 "repeat_rate": _rounded(r.repeat_rate), "negative": r.negative,
                 "negative_share": _rounded(r.negative_share)}
                for r in row.by_intent],
        }
        for row in rows
    ]


# --------------------------------------------------------------------------- table

_HEADERS = ("period", "intent", "contacts", "repeat", "rate", "negative", "share", "alerts")


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{100 * share:.1f}%"


def format_table(rows: list[ContactRow], title: str) -> str:
    """Per period a line for all intents, then one per intent; then the totals."""
    lines_cells: list[tuple[str, ...]] = []

    def add(row: ContactRow) -> None:
        lines_cells.append((row.period, "(all)", str(row.contacts), str(row.repeat),
                            _percent(row.repeat_rate), str(row.negative),
                            _percent(row.negative_share), str(row.negative_alerts)))
        for r in row.by_intent:
            lines_cells.append(("", r.intent, str(r.contacts), str(r.repeat),
                                _percent(r.repeat_rate), str(r.negative),
                                _percent(r.negative_share), ""))

    for row in rows:
        add(row)
    body_end = len(lines_cells)
    add(total_row(rows))
    widths = [max(len(cells[i]) for cells in (_HEADERS, *lines_cells))
              for i in range(len(_HEADERS))]
    rule = "  ".join("-" * w for w in widths)

    def line(cells: tuple[str, ...]) -> str:
        head = (cells[0].ljust(widths[0]), cells[1].ljust(widths[1]))
        rest = (c.rjust(w) for c, w in zip(cells[2:], widths[2:], strict=True))
        return "  ".join((*head, *rest)).rstrip()

    out = [title, line(_HEADERS), rule]
    out += [line(cells) for cells in lines_cells[:body_end]]
    out += [rule, *(line(cells) for cells in lines_cells[body_end:])]
    return "\n".join(out)
