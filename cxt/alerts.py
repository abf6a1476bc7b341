"""`cxt alerts`: how alerts are printed (finding them and acting on them is
`usecases.alerts`, shared with the HTTP API).
"""

from __future__ import annotations

import sys
from typing import TextIO

from domain.records import Alert
from usecases.alerts import ALERT_SCAN, AlertPage

BOTTOM_2_BOX, NEGATIVE_INTERACTION = "bottom_2_box", "negative_interaction"

# -- output ---------------------------------------------------------------------------


def print_list(found: AlertPage, out: TextIO = sys.stdout) -> None:
    alerts = found.alerts
    if not alerts:
        out.write("no alerts match\n" if not found.skipped else "no older alerts match\n")
        return
    out.write(f"{'alert_id':<23} {'status':<12} {'raised_at':<24} {'kind':<20} "
              f"{'score':<5} {'category':<20} {'customer':<12} {'queue':<14} {'agent':<6} "
              "signals\n")
    for a in alerts:
        kind = a.get("kind") or BOTTOM_2_BOX
        score = f"{a['score']}/{a['scale_max']}" if a.get("score") is not None else "-"
        # A negative-interaction alert has no score: what fired says why it was raised.
        signals = ",".join(signal_rules(a)) if kind == NEGATIVE_INTERACTION else "-"
        out.write(f"{a['alert_id']:<23} {a['status']:<12} {a['raised_at']:<24} {kind:<20} "
                  f"{score:<5} {a['category']:<20} "
                  f"{a['customer_id']:<12} {a.get('queue') or '-':<14} "
                  f"{a.get('agent_id') or '-':<6} {signals}\n")
    first = found.skipped + 1
    shown = (f"{len(alerts)} of {found.matching} alert(s)" if first == 1
             else f"alerts {first}-{found.skipped + len(alerts)} of {found.matching}")
    more = f"; --before {found.next} for more" if found.next else ""
    scope = f" (of the newest {ALERT_SCAN})" if found.matching and found.next else ""
    out.write(f"{shown}{scope}, newest first{more}\n")


def signal_rules(alert: Alert) -> list[str]:
    """The rules that fired on a negative-interaction alert, each once, oldest first."""
    rules: list[str] = []
    for signal in alert.get("signals") or []:
        if signal.get("rule") not in rules:
            rules.append(signal["rule"])
    return rules


def _signal_line(signal: dict) -> str:
    extra = [f"{key} {signal[key]}" for key in ("score", "count", "weight")
             if signal.get(key) is not None]
    if signal.get("detail"):
        extra.append(str(signal["detail"]))
    return (f"    {signal.get('occurred_at', '-'):<26} {signal.get('rule', '-'):<22} "
            f"{signal.get('contact', '-')}  {'; '.join(extra)}".rstrip() + "\n")


def print_alert(alert: Alert, out: TextIO = sys.stdout) -> None:
    negative = alert.get("kind") == NEGATIVE_INTERACTION
    what = (f"negative interaction about {alert.get('intent') or 'no intent'}" if negative
            else f"bottom-2-box {alert['score']}/{alert['scale_max']}")
    out.write(f"{alert['alert_id']}  {alert['status'].upper()}  {what}  "
              f"category {alert['category']}\n")
    out.write(f"  customer {alert['customer_id']}  agent {alert.get('agent_id') or '-'}  "
              f"queue {alert.get('queue') or '-'}  "
              f"{'contact' if negative else 'rated contact'} "
              f"{alert.get('contact_id') or '-'}\n")
    if negative:
        out.write("  signals (oldest first):\n")
        for signal in alert.get("signals") or []:
            out.write(_signal_line(signal))
        if alert.get("linked_alerts"):
            out.write(f"  linked bottom-2-box alerts: {', '.join(alert['linked_alerts'])}\n")
    elif alert.get("linked_alert_id"):
        out.write(f"  linked to negative-interaction alert {alert['linked_alert_id']}\n")
    if alert.get("comment"):
        out.write(f"  comment: {alert['comment']!r}\n")
    if alert.get("reason_codes"):
        out.write(f"  reason codes: {', '.join(alert['reason_codes'])}\n")
    if alert.get("categorised_by"):
        out.write(f"  categorised by {alert['categorised_by']} (re-categorised by hand)\n")
    elif alert.get("category_reasons"):
        out.write(f"  categorised by rule {alert.get('category_rule')!r}: "
                  f"{'; '.join(alert['category_reasons'])}\n")
    source = "interaction" if negative else "survey"
    out.write(f"  raised {alert['raised_at']} ({alert['latency_ms']} ms after the {source} "
              f"reached Kafka); acknowledge by {alert['ack_deadline']}\n")
    out.write("  history:\n")
    for step in alert["history"]:
        who = f" by {step['actor']}" if step.get("actor") else ""
        extra = f" ({step['outcome']})" if step.get("outcome") else ""
        note = f": {step['note']}" if step.get("note") else ""
        if step.get("category_to"):
            was = f"{step['category_from']} -> " if step.get("category_from") else "set to "
            extra += f" (category {was}{step['category_to']})"
        out.write(f"    {step['at']}  {step['event']}{who}{extra}{note}\n")
    out.write("  recent interactions (newest first, * = rated contact):\n")
    for entry in alert["context"]:
        mark = "*" if entry.get("rated") else " "
        out.write(f"   {mark} {entry['occurred_at']:<26} {entry['channel']:<7} {entry['type']}\n")
