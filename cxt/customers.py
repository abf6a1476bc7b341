"""`cxt customers show|export|merge-preview|erase`: printing what is held, writing the
export, what a merge would move, and the erasure's confirmation (the reads, their JSON
and the erasure itself are `usecases.customers` and `usecases.self_service`).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import TextIO

import orjson

from domain.alerts import RESOLVED
from domain.identity import is_ambiguous
from kernel.errors import InputError
from kernel.settings import Settings
from usecases.customers import CustomerCommandError, CustomerView, MergePreview
from usecases.self_service import export_from_settings


def export(settings: Settings, customer_id: str, output: str | None) -> int:
    """Write the export to `output` (a new file, readable by its owner only: it is
    personal data) or standard output; exit status 1 when nothing is held."""
    document = asyncio.run(export_from_settings(settings, customer_id))
    if not document["keys"]:
        raise CustomerCommandError(f"nothing is held about {customer_id!r}: no record, "
                                   "timeline, alerts, notes or preferences under that id")
    body = orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
    if output in (None, "-"):
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
        return 0
    assert output is not None
    try:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InputError(f"--output {output}: the file exists; choose another name or "
                         "remove it first") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise InputError(f"--output {output[:200]}: {why}") from None
    with os.fdopen(fd, "wb") as out:
        out.write(body)
    print(f"wrote the export of {customer_id} to {output} ({len(document['keys'])} Redis "
          f"keys, {len(document['timeline'])} timeline entries)", file=sys.stderr)
    return 0


def confirm_erase(customer_id: str, view: CustomerView, *, assume_yes: bool,
                  stdin: TextIO | None = None, out: TextIO | None = None) -> bool:
    """Ask before an erasure that cannot be undone; refuse when nobody can answer."""
    # Looked up at the call, not at import: a caller may have redirected them since.
    stdin, out = stdin or sys.stdin, out or sys.stderr
    if assume_yes:
        return True
    if not stdin.isatty():
        raise CustomerCommandError(f"not erasing {customer_id}: standard input is not a "
                                   "terminal to confirm on; pass --yes to erase without asking")
    held = (f"its record, {view.overview.entries} timeline entries and {len(view.alerts)} "
            "alert(s)" if view.known else "nothing stored here (downstream copies still are)")
    parts = f" and the {len(view.parts)} customer(s) merged into it" if view.parts else ""
    out.write(f"Erase customer {customer_id}{parts}: {held}. This cannot be undone.\n"
              f"Type the customer id to confirm: ")
    out.flush()
    return stdin.readline().strip() == customer_id


def print_view(view: CustomerView, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    record = view.overview.record
    out.write(f"customer {view.customer_id}"
              f"{'' if record else '  (no customer record: a timeline only)'}\n")
    for field, value in (record or {}).items():
        if field not in ("customer_id", "identifiers", "merged_into"):
            out.write(f"  {field}: {value}\n")
    if view.merged_into:
        chain = "" if view.root == view.merged_into else f"; its timeline is {view.root}'s"
        out.write(f"  merged into {view.merged_into}{chain} (root {view.root})\n")
    if view.parts:
        out.write(f"  merged into it: {', '.join(view.parts)}\n")
    if view.identifiers:
        out.write("  identifiers:\n")
    for ident in view.identifiers:
        out.write(f"    {ident.key}  ({_claim_state(view, ident.claimants, ident.roots)}"
                  f"{'' if ident.matching else '; never used for matching'})\n")
    _print_links(view, out)
    open_alerts = [a for a in view.alerts if a.get("status") != RESOLVED]
    out.write(f"  timeline: {view.overview.entries} entries; alerts: {len(view.alerts)} "
              f"({len(open_alerts)} not resolved)\n")


def _claim_state(view: CustomerView, claimants: tuple[str, ...], roots: tuple[str, ...]
                 ) -> str:
    others = [c for c in claimants if c != view.customer_id]
    if not claimants:
        return "claimed by no one yet"
    if not others:
        return "resolves here"
    if view.customer_id not in claimants:
        return f"claimed by {', '.join(claimants)}"
    shared = f"shared with {', '.join(others)}"
    if len(roots) == 1:  # all claimants merged into one timeline: not ambiguous
        return f"{shared}; all in {roots[0]}'s timeline"
    return f"{shared}: an interaction carrying only it waits for an agent to confirm"


def _print_links(view: CustomerView, out: TextIO) -> None:
    linked = view.overview.linked
    for title, ambiguous in (("provisional profiles linked in", False),
                             ("ambiguous profiles confirmed in", True)):
        chosen = {p: n for p, n in linked.items() if is_ambiguous(p) == ambiguous}
        if chosen:
            out.write(f"  {title}:\n")
        for pid, count in sorted(chosen.items()):
            out.write(f"    {pid}  ({count} entries)\n")
    waiting = [(pid, "entries waiting to be linked") for pid in view.waiting] + [
        (pid, "entries waiting for an agent to confirm who called")
        for pid in view.unconfirmed]
    if waiting:
        out.write("  profiles of its identifiers holding entries:\n")
    for pid, state in waiting:
        out.write(f"    {pid}  ({state})\n")


def print_preview(preview: MergePreview, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    root = "" if preview.root == preview.into else f", which is merged into {preview.root}"
    out.write(f"merging {preview.customer_id} into {preview.into}{root} would move into "
              f"{preview.root}'s timeline:\n")
    if preview.currently_into:
        out.write(f"  (now merged into {preview.currently_into}: the new record takes it "
                  "out of there first)\n")
    if not preview.into_known:
        out.write(f"  note: {preview.into} has no customer record here\n")
    channels = ", ".join(f"{n} {c}" for c, n in preview.by_channel.items())
    out.write(f"  entries: {preview.entries}{f' ({channels})' if channels else ''}\n")
    open_alerts = [a for a in preview.alerts if a.get("status") != RESOLVED]
    out.write(f"  alerts: {len(preview.alerts)} ({len(open_alerts)} not resolved)\n")
    for alert in preview.alerts:
        out.write(f"    {alert['alert_id']}  {alert['status']}\n")
    if len(preview.parts) > 1:
        out.write(f"  customers: {', '.join(preview.parts)} ({preview.customer_id} and the "
                  "customers merged into it)\n")
    keys = [(part, key) for part, found in preview.identifiers.items() for key in found]
    out.write(f"  identifiers: {len(keys)}\n")
    for part, key in keys:
        out.write(f"    {key}{'' if part == preview.customer_id else f'  (of {part})'}\n")
