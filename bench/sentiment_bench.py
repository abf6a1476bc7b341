"""Sentiment scoring cost: vaderSentiment's polarity_scores against domain.vader.compound.

    .venv/bin/python bench/sentiment_bench.py               # 20,000 demo texts, best of 5
    .venv/bin/python bench/sentiment_bench.py --texts 2000 --repeat 3
    .venv/bin/python bench/sentiment_bench.py --json out.json

The texts are what the worker scores: the customer's words of the demo
traffic's chats, inbound e-mails and social posts (cxt.traffic with seed 1,
read by domain.sentiment.customer_text with config/signals.toml's max_chars).
It prints µs per text for both, overall and by text length, and fails (exit 1)
if any score differs: a fast wrong answer is no answer.  Single process, no
services; the figures are CPU time of this machine, so compare runs on one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # type: ignore[import-untyped]

from cxt.traffic import TrafficGenerator, make_customers
from domain.sentiment import customer_text
from domain.signal_config import DEFAULT_SIGNALS_PATH, load_signals
from domain.vader import compound

BUCKETS = (("all", 0, 10**9), ("<20", 0, 20), ("20-79", 20, 80), ("80-199", 80, 200),
           ("200+", 200, 10**9))


def demo_texts(count: int) -> list[str]:
    max_chars = load_signals(DEFAULT_SIGNALS_PATH).sentiment.max_chars
    generator = TrafficGenerator(make_customers(1000, seed=1), seed=1)
    texts: list[str] = []
    while len(texts) < count:
        channel, event = generator.next_event()
        text = customer_text(channel, event.get("payload"), max_chars)
        if text is not None:
            texts.append(text)
    return texts


def per_text_us(score: Callable[[str], float], texts: list[str], repeat: int) -> float:
    if not texts:
        return 0.0
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for text in texts:
            score(text)
        best = min(best, time.perf_counter() - started)
    return best / len(texts) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=20_000, help="demo texts to score")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each; the best counts")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.texts < 1 or args.repeat < 1:
        parser.error("--texts and --repeat must be at least 1")

    texts = demo_texts(args.texts)
    analyser = SentimentIntensityAnalyzer()

    def vader_sentiment(text: str) -> float:
        score: float = analyser.polarity_scores(text)["compound"]
        return score

    differ = [text for text in texts if vader_sentiment(text) != compound(text)]
    rows = []
    for label, low, high in BUCKETS:
        chosen = [text for text in texts if low <= len(text) < high]
        if not chosen:
            continue
        theirs = per_text_us(vader_sentiment, chosen, args.repeat)
        ours = per_text_us(compound, chosen, args.repeat)
        rows.append({"chars": label, "texts": len(chosen),
                     "mean_chars": round(sum(map(len, chosen)) / len(chosen)),
                     "vadersentiment_us": round(theirs, 2), "domain_vader_us": round(ours, 2),
                     "speedup": round(theirs / ours, 1)})
    print(f"{'chars':>8} {'texts':>7} {'mean':>5} {'vaderSentiment':>15} {'domain.vader':>13} "
          f"{'speedup':>8}")
    for row in rows:
        print(f"{row['chars']:>8} {row['texts']:>7} {row['mean_chars']:>5} "
              f"{row['vadersentiment_us']:>12.1f} µs {row['domain_vader_us']:>10.1f} µs "
              f"{row['speedup']:>7.1f}x")
    print(f"scores differ on {len(differ)} of {len(texts)} texts")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "differ": len(differ)}, indent=2) + "\n",
                             encoding="utf-8")
    for text in differ[:5]:
        print(f"  {text!r}: vaderSentiment {vader_sentiment(text)}, domain.vader {compound(text)}",
              file=sys.stderr)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
