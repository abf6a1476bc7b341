"""`cxt alerts`: how alerts are printed (finding them and acting on them is
`usecases.alerts`, shared with the HTTP API).
"""

from __future__ import annotations

import sys
from typing import TextIO

from domain.records import Alert
from usecases.alerts import ALERT_SCAN, AlertPage

# -- output ---------------------------------------------------------------------------


def print_list(found: AlertPage, out: TextIO = sys.stdout) -> None:
    alerts = found.alerts
    if not alerts:
        out.write("no alerts match\n" if not found.skipped else "no older alerts match\n")
        return
    out.write(f"{'alert_id':<23} {'status':<12} {'raised_at':<24} {'score':<5} "
              f"{'category':<19} {'customer':<12} {'queue':<14} agent\n")
    for a in alerts:
        out.write(f"{a['alert_id']:<23} {a['status']:<12} {a['raised_at']:<24} "
                  f"{a['score']}/{a['scale_max']:<3} {a['category']:<19} "
                  f"{a['customer_id']:<12} {a.get('queue') or '-':<14} "
                  f"{a.get('agent_id') or '-'}\n")
    first = found.skipped + 1
    shown = (f"{len(alerts)} of {found.matching} alert(s)" if first == 1
             else f"alerts {first}-{found.skipped + len(alerts)} of {found.matching}")
    more = f"; --before {found.next} for more" if found.next else ""
    scope = f" (of the newest {ALERT_SCAN})" if found.matching and found.next else ""
    out.write(f"{shown}{scope}, newest first{more}\n")


def print_alert(alert: Alert, out: TextIO = sys.stdout) -> None:
    out.write(f"{alert['alert_id']}  {alert['status'].upper()}  bottom-2-box "
              f"{alert['score']}/{alert['scale_max']}  category {alert['category']}\n")
    out.write(f"  customer {alert['customer_id']}  agent {alert.get('agent_id') or '-'}  "
              f"queue {alert.get('queue') or '-'}  "
              f"rated contact {alert.get('contact_id') or '-'}\n")
    if alert.get("comment"):
        out.write(f"  comment: {alert['comment']!r}\n")
    if alert.get("reason_codes"):
        out.write(f"  reason codes: {', '.join(alert['reason_codes'])}\n")
    if alert.get("categorised_by"):
        out.write(f"  categorised by {alert['categorised_by']} (re-categorised by hand)\n")
    elif alert.get("category_reasons"):
        out.write(f"  categorised by rule {alert.get('category_rule')!r}: "
                  f"{'; '.join(alert['category_reasons'])}\n")
    out.write(f"  raised {alert['raised_at']} ({alert['latency_ms']} ms after the survey reached "
              f"Kafka); acknowledge by {alert['ack_deadline']}\n")
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
