"""`cxt customers show|erase`: printing what is held, and the erasure's confirmation
(the reads and the erasure itself are `usecases.customers`).
"""

from __future__ import annotations

import sys
from typing import TextIO

from domain.alerts import RESOLVED
from usecases.customers import CustomerCommandError, CustomerView


def confirm_erase(customer_id: str, view: CustomerView, *, assume_yes: bool,
                  stdin: TextIO = sys.stdin, out: TextIO = sys.stderr) -> bool:
    """Ask before an erasure that cannot be undone; refuse when nobody can answer."""
    if assume_yes:
        return True
    if not stdin.isatty():
        raise CustomerCommandError(f"not erasing {customer_id}: standard input is not a "
                                   "terminal to confirm on; pass --yes to erase without asking")
    held = (f"its record, {view.overview.entries} timeline entries and {len(view.alerts)} "
            "alert(s)" if view.known else "nothing stored here (downstream copies still are)")
    out.write(f"Erase customer {customer_id}: {held}. This cannot be undone.\n"
              f"Type the customer id to confirm: ")
    out.flush()
    return stdin.readline().strip() == customer_id


def print_view(view: CustomerView, out: TextIO = sys.stdout) -> None:
    record = view.overview.record
    out.write(f"customer {view.customer_id}"
              f"{'' if record else '  (no customer record: a timeline only)'}\n")
    for field, value in (record or {}).items():
        if field not in ("customer_id", "identifiers"):
            out.write(f"  {field}: {value}\n")
    if view.identifiers:
        out.write("  identifiers:\n")
    for key, owner in view.identifiers:
        state = ("resolves here" if owner == view.customer_id
                 else "claimed by no one yet" if owner is None else f"claimed by {owner}")
        out.write(f"    {key}  ({state})\n")
    _print_links(view, out)
    open_alerts = [a for a in view.alerts if a.get("status") != RESOLVED]
    out.write(f"  timeline: {view.overview.entries} entries; alerts: {len(view.alerts)} "
              f"({len(open_alerts)} not resolved)\n")


def _print_links(view: CustomerView, out: TextIO) -> None:
    linked = view.overview.linked
    if linked:
        out.write("  provisional profiles linked in:\n")
    for pid, count in sorted(linked.items()):
        out.write(f"    {pid}  ({count} entries)\n")
    for pid in view.waiting:
        out.write(f"    {pid}  (entries waiting to be linked)\n")


def view_json(view: CustomerView) -> dict:
    return {"customer_id": view.customer_id, "known": view.known,
            "record": view.overview.record, "timeline_entries": view.overview.entries,
            "identifiers": [{"key": key, "resolves_to": owner}
                            for key, owner in view.identifiers],
            "linked_provisional_profiles": view.overview.linked,
            "unlinked_provisional_profiles": view.waiting,
            "alerts": [{"alert_id": a["alert_id"], "status": a["status"]} for a in view.alerts]}

