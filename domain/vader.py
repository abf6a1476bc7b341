"""VADER's compound sentiment score (vaderSentiment 3.3.2), computed faster.

Why this exists: the worker scores the customer's words of every chat, e-mail
and social event, and `SentimentIntensityAnalyzer().polarity_scores(text)`
costs about 36 µs for a 65-character text, more than the rest of the worker
does per event (~32 µs).  Its time goes on Python overhead, not on the model: a
per-character loop looking for emoji, `.lower()` on the same token up to a dozen
times, a lowered copy of the whole token list for every negation and idiom
check, and the pos/neu/neg ratios we never read.  This port does each thing
once: emoji are replaced by one `str.translate` and only when the text is not
pure ASCII (every emoji is non-ASCII), each distinct token is stripped and
lowered once (remembered across texts), and the neighbour checks run only for
tokens the lexicon scores.  bench/sentiment_bench.py measures both.

It MUST return exactly what vaderSentiment returns for `["compound"]`, for any
text: same lexicon, same rules, same floating-point operations in the same
order (including VADER's quirks, such as its "but" rule finding a sentiment by
value with `list.index`).  tests/unit/domain/test_vader.py checks it against
the installed package on the labelled fixture, 20,000 demo texts, VADER's own
examples and generated text; change a rule here only with that test passing.

The lexicon, the emoji descriptions and the rule tables (boosters, negations,
idioms, constants) are read from the installed package, never copied here, so
the model stays the library's and a different version shows up in the test.
"""

from __future__ import annotations

import math
import string
from importlib import resources

from vaderSentiment.vaderSentiment import (  # type: ignore[import-untyped]
    BOOSTER_DICT,
    C_INCR,
    N_SCALAR,
    NEGATE,
    SPECIAL_CASES,
)

_PACKAGE = "vaderSentiment"
_PUNCTUATION = string.punctuation
_WORD_CACHE_LIMIT = 50_000  # distinct tokens remembered; cleared when full, a few MB at most


def _package_text(name: str) -> str:
    # Bytes then decode, as vaderSentiment's codecs.open does: no newline translation.
    return (resources.files(_PACKAGE) / name).read_bytes().decode("utf-8")


def _lexicon() -> dict[str, float]:
    # Parsed the way SentimentIntensityAnalyzer.make_lex_dict parses it (a later line wins).
    lexicon: dict[str, float] = {}
    for line in _package_text("vader_lexicon.txt").rstrip("\n").split("\n"):
        if not line:
            continue
        word, measure = line.strip().split("\t")[0:2]
        lexicon[word] = float(measure)
    return lexicon


def _emoji_table() -> dict[int, str]:
    """str.translate table: each emoji VADER recognises -> " " + its description.

    VADER walks the text one character at a time, so only one-character entries
    of its emoji lexicon can ever match.  It adds a space before a description
    unless one is already there, and none after; a space too many changes no
    token (the text is split on whitespace) and no "!" or "?" count, so
    always adding one gives the same score.
    """
    emojis: dict[str, str] = {}
    for line in _package_text("emoji_utf8_lexicon.txt").rstrip("\n").split("\n"):
        emoji, description = line.strip().split("\t")[0:2]
        emojis[emoji] = description
    return {ord(emoji): " " + description for emoji, description in emojis.items()
            if len(emoji) == 1}


_LEXICON = _lexicon()
# Words whose valence counts: a booster in the lexicon would score 0 in VADER (none is, in 3.3.2).
_SCORED = {word: valence for word, valence in _LEXICON.items() if word not in BOOSTER_DICT}
_EMOJI = _emoji_table()
_NEGATE = frozenset(NEGATE)
# Every word of a multi-word idiom or booster: no idiom can match a window without one.
_IDIOM_WORDS = frozenset(part for key in (*SPECIAL_CASES, *BOOSTER_DICT) if " " in key
                         for part in key.split(" "))
_LEAST_IS_LEXICON = "least" in _LEXICON


class _Words(dict[str, str]):
    """A raw token -> VADER's word for it, lowered; worked out once per distinct token."""

    def __missing__(self, token: str) -> str:
        # SentiText._strip_punc_if_word: a token of two characters or fewer once
        # stripped is probably an emoticon (":)"), kept whole.
        stripped = token.strip(_PUNCTUATION)
        word = (token if len(stripped) <= 2 else stripped).lower()
        if len(self) >= _WORD_CACHE_LIMIT:
            self.clear()
        self[token] = word
        return word


_WORDS = _Words()


def compound(text: str) -> float:
    """VADER's compound score of `text`, -1 (most negative) .. 1 (most positive), 4 decimals."""
    if not text.isascii():
        text = text.translate(_EMOJI)
    tokens = text.split()
    n = len(tokens)
    if not n:
        return 0.0
    # A word's case is the token's: stripping punctuation removes no cased character.
    words = list(map(_WORDS.__getitem__, tokens))
    sentiments: list[float] = [0] * n  # VADER appends an int 0 for an unscored token
    cap_diff: bool | None = None  # some but not all tokens in capitals; counted only when needed
    last = n - 1
    for i, word in enumerate(words):
        base = _SCORED.get(word)
        if base is None:
            continue
        if word == "kind" and i < last and words[i + 1] == "of":
            continue
        valence = base
        if word == "no" and i != last and words[i + 1] in _LEXICON:
            valence = 0.0  # "no" negates the next word instead of scoring itself
        if (i > 0 and words[i - 1] == "no") or (i > 1 and words[i - 2] == "no") \
                or (i > 2 and words[i - 3] == "no" and words[i - 1] in ("or", "nor")):
            valence = base * N_SCALAR
        if tokens[i].isupper():
            if cap_diff is None:
                cap_diff = _cap_differential(tokens)
            if cap_diff:
                if valence > 0:
                    valence += C_INCR
                else:
                    valence -= C_INCR
        # The three words before, nearest first, each only when the lexicon does not score it.
        if i > 0:
            before = words[i - 1]
            if before not in _LEXICON:
                if before in BOOSTER_DICT:
                    cap_diff, boost = _boost(before, tokens[i - 1], valence, cap_diff, tokens)
                    valence = valence + boost
                else:
                    valence = valence + 0.0
                if before in _NEGATE or "n't" in before:
                    valence = valence * N_SCALAR
        if i > 1:
            before = words[i - 2]
            if before not in _LEXICON:
                if before in BOOSTER_DICT:
                    cap_diff, boost = _boost(before, tokens[i - 2], valence, cap_diff, tokens)
                    if boost != 0:
                        boost = boost * 0.95
                    valence = valence + boost
                else:
                    valence = valence + 0.0
                after = words[i - 1]
                if before == "never" and (after == "so" or after == "this"):
                    valence = valence * 1.25
                elif before == "without" and after == "doubt":
                    pass
                elif before in _NEGATE or "n't" in before:
                    valence = valence * N_SCALAR
        if i > 2:
            before = words[i - 3]
            if before not in _LEXICON:
                if before in BOOSTER_DICT:
                    cap_diff, boost = _boost(before, tokens[i - 3], valence, cap_diff, tokens)
                    if boost != 0:
                        boost = boost * 0.9
                    valence = valence + boost
                else:
                    valence = valence + 0.0
                two, one = words[i - 2], words[i - 1]
                # VADER's precedence: (never and (so or this)) or (so or this).
                if (before == "never" and (two == "so" or two == "this")) \
                        or (one == "so" or one == "this"):
                    valence = valence * 1.25
                elif before == "without" and (two == "doubt" or one == "doubt"):
                    pass
                elif before in _NEGATE or "n't" in before:
                    valence = valence * N_SCALAR
                if two in _IDIOM_WORDS or one in _IDIOM_WORDS or word in _IDIOM_WORDS:
                    valence = _idioms(valence, words, i)
        if i > 0 and words[i - 1] == "least" and not _LEAST_IS_LEXICON:
            # "least" negates, except in "at least" and "very least".
            if i > 1:
                if words[i - 2] != "at" and words[i - 2] != "very":
                    valence = valence * N_SCALAR
            else:
                valence = valence * N_SCALAR
        sentiments[i] = valence
    if "but" in words:
        _but(words.index("but"), sentiments)
    total = float(sum(sentiments))
    if total > 0:
        total += _punctuation_emphasis(text)
    elif total < 0:
        total -= _punctuation_emphasis(text)
    score = total / math.sqrt((total * total) + 15)
    if score < -1.0:
        score = -1.0
    elif score > 1.0:
        score = 1.0
    return round(score, 4)


def _cap_differential(tokens: list[str]) -> bool:
    capitals = sum(map(str.isupper, tokens))
    return 0 < len(tokens) - capitals < len(tokens)


def _boost(word: str, token: str, valence: float, cap_diff: bool | None,
           tokens: list[str]) -> tuple[bool | None, float]:
    """(cap_diff, booster scalar) as VADER's scalar_inc_dec gives it for a booster word."""
    scalar = BOOSTER_DICT[word]
    if valence < 0:
        scalar *= -1
    if token.isupper():
        if cap_diff is None:
            cap_diff = _cap_differential(tokens)
        if cap_diff:
            if valence > 0:
                scalar += C_INCR
            else:
                scalar -= C_INCR
    return cap_diff, scalar


def _idioms(valence: float, words: list[str], i: int) -> float:
    # SentimentIntensityAnalyzer._special_idioms_check: the first idiom ending
    # around the word sets the valence, one starting at it overrides, then a
    # "kind of"/"sort of" before it dampens.
    three, two, one, zero = words[i - 3], words[i - 2], words[i - 1], words[i]
    three_two_one = f"{three} {two} {one}"
    three_two = f"{three} {two}"
    two_one = f"{two} {one}"
    for sequence in (f"{one} {zero}", f"{two} {one} {zero}", two_one, three_two_one, three_two):
        if sequence in SPECIAL_CASES:
            valence = SPECIAL_CASES[sequence]
            break
    if len(words) - 1 > i:
        zero_one = f"{zero} {words[i + 1]}"
        if zero_one in SPECIAL_CASES:
            valence = SPECIAL_CASES[zero_one]
    if len(words) - 1 > i + 1:
        zero_one_two = f"{zero} {words[i + 1]} {words[i + 2]}"
        if zero_one_two in SPECIAL_CASES:
            valence = SPECIAL_CASES[zero_one_two]
    for n_gram in (three_two_one, three_two, two_one):
        if n_gram in BOOSTER_DICT:
            valence = valence + BOOSTER_DICT[n_gram]
    return valence


def _but(but_at: int, sentiments: list[float]) -> None:
    # SentimentIntensityAnalyzer._but_check, quirk included: each sentiment is
    # looked up by value, so a repeated value changes the first one equal to it.
    for sentiment in sentiments:
        at = sentiments.index(sentiment)
        if at < but_at:
            sentiments[at] = sentiment * 0.5
        elif at > but_at:
            sentiments[at] = sentiment * 1.5


def _punctuation_emphasis(text: str) -> float:
    exclamations = text.count("!")
    if exclamations > 4:
        exclamations = 4
    questions = text.count("?")
    question_amplifier: float = 0
    if questions > 1:
        question_amplifier = questions * 0.18 if questions <= 3 else 0.96
    return exclamations * 0.292 + question_amplifier
