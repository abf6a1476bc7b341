"""`cxt deadletters list|show|replay`: printing only (usecases.deadletters does the work)."""

from __future__ import annotations

import sys

import orjson

from usecases.deadletters import DeadLetter, ReplayReport


def print_row(letter: DeadLetter) -> None:
    message = letter.message if len(letter.message) <= 60 else letter.message[:57] + "..."
    print(f"{letter.id:<10} {letter.rejected_at:<24} {letter.reason:<18} "
          f"{letter.topic:<26} {message}")


def print_header() -> None:
    print(f"{'ID':<10} {'REJECTED AT':<24} {'REASON':<18} {'FROM TOPIC':<26} MESSAGE")


def print_json_line(letter: DeadLetter) -> None:
    sys.stdout.write(orjson.dumps(letter.summary()).decode() + "\n")


def print_one(letter: DeadLetter, as_json: bool) -> None:
    """The whole dead letter, the rejected record as text when it is UTF-8."""
    original = None if letter.original is None else letter.original.decode(errors="replace")
    if as_json:
        print(orjson.dumps({**letter.summary(), "original": original}).decode())
        return
    for name, value in letter.summary().items():
        print(f"{name + ':':<13} {value}")
    print(f"{'original:':<13} {original}")


def progress_line(report: ReplayReport) -> str:
    return f"deadletters replay: {report.line()} so far"
