"""The early-warning figure: of the customers who gave a bottom-2-box survey, how many
had a negative-interaction alert raised before it, and how much earlier.

Per customer, the first bottom-2-box alert (by raised_at) among those read counts.
It was warned of when a negative-interaction alert of the same customer was raised
before it, at most `window_s` earlier: the one it is linked to (`linked_alert_id`)
when that one was raised before, else the latest such alert.  The lead is the time
between the two raises, which is when the advisory group could first act on each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from statistics import median
from typing import Any

from kernel.times import epoch_ms, parse_rfc3339

BOTTOM_2_BOX = "bottom_2_box"
NEGATIVE_INTERACTION = "negative_interaction"
DEFAULT_WINDOW_S = 7 * 86_400


@dataclass(frozen=True)
class EarlyWarning:
    customers_with_bottom_2_box: int
    of_which_alerted_first: int
    lead_seconds: list[float]  # one per customer alerted first, ascending

    @property
    def share(self) -> float | None:
        n = self.customers_with_bottom_2_box
        return self.of_which_alerted_first / n if n else None

    @property
    def median_s(self) -> float | None:
        return median(self.lead_seconds) if self.lead_seconds else None

    @property
    def p90_s(self) -> float | None:
        return percentile(self.lead_seconds, 0.9)

    def to_json(self) -> dict[str, Any]:
        return {
            "customers_with_bottom_2_box": self.customers_with_bottom_2_box,
            "of_which_alerted_first": self.of_which_alerted_first,
            "share": None if self.share is None else round(self.share, 4),
            "lead_seconds": {"median": _round(self.median_s), "p90": _round(self.p90_s)},
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def percentile(ordered: list[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks of an ascending list."""
    if not ordered:
        return None
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _raised_ms(alert: Mapping[str, Any]) -> int | None:
    raised = alert.get("raised_at")
    if not isinstance(raised, str):
        return None
    try:
        return epoch_ms(parse_rfc3339(raised, strict=True))
    except ValueError:
        return None  # a malformed stored alert must not take the whole figure down


def early_warning(alerts: Iterable[Mapping[str, Any]], *,
                  window_s: float = DEFAULT_WINDOW_S) -> EarlyWarning:
    first_b2b: dict[str, tuple[int, Mapping[str, Any]]] = {}
    negatives: dict[str, list[tuple[int, str]]] = {}
    for alert in alerts:
        customer, raised = alert.get("customer_id"), _raised_ms(alert)
        if not isinstance(customer, str) or raised is None:
            continue
        kind = alert.get("kind", BOTTOM_2_BOX)  # alerts from before kinds were bottom-2-box
        if kind == BOTTOM_2_BOX:
            if customer not in first_b2b or raised < first_b2b[customer][0]:
                first_b2b[customer] = (raised, alert)
        elif kind == NEGATIVE_INTERACTION:
            negatives.setdefault(customer, []).append((raised, str(alert.get("alert_id"))))
    leads = []
    window_ms = window_s * 1000
    for customer, (b2b_ms, b2b) in first_b2b.items():
        before = [(ms, aid) for ms, aid in negatives.get(customer, ())
                  if b2b_ms - window_ms <= ms < b2b_ms]
        if not before:
            continue
        linked = [ms for ms, aid in before if aid == b2b.get("linked_alert_id")]
        warned_ms = linked[0] if linked else max(ms for ms, _ in before)
        leads.append((b2b_ms - warned_ms) / 1000)
    return EarlyWarning(len(first_b2b), len(leads), sorted(leads))


def format_text(figure: EarlyWarning, scanned: int) -> str:
    share = "-" if figure.share is None else f"{100 * figure.share:.1f}%"

    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:,.1f} s"

    return "\n".join((
        f"Early warning, over the newest {scanned:,} alerts",
        f"  customers with a bottom-2-box survey   {figure.customers_with_bottom_2_box:,}",
        f"  of which a negative-interaction alert  {figure.of_which_alerted_first:,} ({share})"
        " was raised first",
        f"  lead time                               median {seconds(figure.median_s)}, "
        f"p90 {seconds(figure.p90_s)}",
    ))
