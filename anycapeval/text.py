"""Counting words and sentences, and reading free-text length constraints by rule.

The constraint sentences in AnyCapEval are free text ("needs to be 10 to 20 words", "cannot exceed
three sentences", "one sentence"). They are parsed into a (unit, low, high) range from their parts —
a number (digits or English number words), a comparator phrase and a unit — never by looking the
whole sentence up in a table, so new phrasings work and an unreadable one is reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# English words: letters with inner apostrophes or hyphens ("don't", "black-and-white").
# CJK ideographs, kana and hangul count one word per character.
_CJK = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_WORD_RE = re.compile(rf"[^\W\d_{_CJK}]+(?:['’\-][^\W\d_{_CJK}]+)*|[{_CJK}]")
_SENTENCE_END_RE = re.compile(r"[.!?]+")
_HAS_CONTENT_RE = re.compile(rf"[^\W_]|[{_CJK}]")


# _WORD_RE on ASCII text (most captions): the same matches, as letters are then [A-Za-z] and no CJK or
# curly apostrophe can occur, in half the time.
_ASCII_WORD_RE = re.compile(r"[A-Za-z]+(?:['\-][A-Za-z]+)*")


def count_words(text: str) -> int:
    return len((_ASCII_WORD_RE if text.isascii() else _WORD_RE).findall(text))


def count_sentences(text: str) -> int:
    """Non-empty segments between '.', '!' and '?' (a segment of only quotes/spaces is empty)."""
    return sum(1 for seg in _SENTENCE_END_RE.split(text) if _HAS_CONTENT_RE.search(seg))


# The official AnyCap scripts' counting, kept for the `anycap_v1` protocol: ASCII letters only (so
# "café" is not a word and a curly apostrophe splits one), CJK punctuation and full-width forms count
# as words, and any segment with a non-space character is a sentence.
_V1_WORD_RE = re.compile(r"\b[a-zA-Z]+(?:['-][a-zA-Z]+)*\b")
_V1_CJK_RE = re.compile(r"[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]")


def count_words_v1(text: str) -> int:
    return len(_V1_WORD_RE.findall(text)) + len(_V1_CJK_RE.findall(text))


def count_sentences_v1(text: str) -> int:
    return sum(1 for seg in re.split(r"[.!?]", text) if seg.strip())


_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "a single": 1,
    "single": 1,
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}
_NUM_WORD = (
    r"(?:(?:" + "|".join(_TENS) + r")(?:[\s-](?:" + "|".join(k for k in _UNITS if " " not in k) + r"))?"
    r"|" + "|".join(sorted(_UNITS, key=len, reverse=True)) + r"|one hundred|a hundred|hundred)"
)
_NUM = rf"(\d+|{_NUM_WORD})"


def _to_int(token: str) -> int:
    token = token.strip().lower()
    if token.isdigit():
        return int(token)
    if token in ("one hundred", "a hundred", "hundred"):
        return 100
    if token in _UNITS:
        return _UNITS[token]
    parts = re.split(r"[\s-]+", token)
    return _TENS[parts[0]] + (_UNITS[parts[1]] if len(parts) > 1 else 0)


@dataclass(frozen=True)
class LengthConstraint:
    unit: str  # "words" | "sentences"
    low: int | None  # inclusive; None = no lower bound
    high: int | None  # inclusive; None = no upper bound
    text: str

    def measure(self, caption: str, v1: bool = False) -> int:
        if self.unit == "words":
            return count_words_v1(caption) if v1 else count_words(caption)
        return count_sentences_v1(caption) if v1 else count_sentences(caption)

    def check(self, caption: str, v1: bool = False) -> bool:
        return self.accepts(self.measure(caption, v1))

    def accepts(self, n: int) -> bool:
        """Whether a caption `n` units long meets the constraint."""
        return (self.low is None or n >= self.low) and (self.high is None or n <= self.high)

    def describe(self) -> str:
        if self.low == self.high:
            return f"exactly {self.low} {self.unit}"
        if self.low is None:
            return f"at most {self.high} {self.unit}"
        if self.high is None:
            return f"at least {self.low} {self.unit}"
        return f"{self.low}-{self.high} {self.unit}"


class ConstraintParseError(ValueError):
    pass


# Comparator phrases, tried in order; each maps the number(s) to (low, high).
_RANGE = [
    (rf"between {_NUM} and {_NUM}", lambda a, b: (a, b)),
    (rf"(?:from )?{_NUM} (?:to|-|–) {_NUM}", lambda a, b: (a, b)),
    (rf"{_NUM}\s*[-–]\s*{_NUM}", lambda a, b: (a, b)),
]
_BOUND = [
    (r"(?:no more than|not more than|cannot exceed|can ?not exceed|can't exceed|must not exceed|"
     r"should not exceed|not exceed|does not exceed|at most|up to|a maximum of|maximum of|max(?:imum)?|"
     r"within|no longer than)", lambda n: (None, n)),
    (r"(?:fewer than|less than|under|shorter than|below)", lambda n: (None, n - 1)),
    (r"(?:no fewer than|no less than|not less than|at least|a minimum of|minimum of|min(?:imum)?)",
     lambda n: (n, None)),
    (r"(?:more than|over|longer than|exceeding)", lambda n: (n + 1, None)),
    (r"(?:exactly|precisely|just)", lambda n: (n, n)),
]


@lru_cache(maxsize=4096)  # a benchmark has a handful of distinct sentences over thousands of items
def parse_length_constraint(text: str) -> LengthConstraint:
    """Parse a free-text length constraint; raise ConstraintParseError if it has no clear reading."""
    s = " ".join(text.lower().replace("’", "'").split())
    units = {u for u, pat in (("words", r"\bwords?\b"), ("sentences", r"\bsentences?\b")) if re.search(pat, s)}
    if len(units) != 1:
        raise ConstraintParseError(f"cannot tell the unit (words or sentences) in {text!r}")
    unit = units.pop()
    u = "words?" if unit == "words" else "sentences?"
    for phrase, rule in _RANGE:
        m = re.search(rf"\b{phrase}\s+{u}\b", s)
        if m:
            low, high = rule(_to_int(m.group(1)), _to_int(m.group(2)))
            if low > high:
                raise ConstraintParseError(f"empty range {low}..{high} in {text!r}")
            return LengthConstraint(unit, low, high, text)
    for phrase, bound in _BOUND:
        m = re.search(rf"\b{phrase}\s+{_NUM}\s+{u}\b", s)
        if m:
            low, high = bound(_to_int(m.group(1)))
            return LengthConstraint(unit, low, high, text)
    # A bare count ("one sentence", "be 15 words") means exactly that many; two bare counts are ambiguous.
    bare = re.findall(rf"\b{_NUM}\s+{u}\b", s)
    if len(bare) == 1:
        n = _to_int(bare[0])
        return LengthConstraint(unit, n, n, text)
    raise ConstraintParseError(f"no number of {unit} found in {text!r}")


def within_reference_band(caption: str, reference: str, tolerance: float = 0.30) -> bool:
    """Style rule for brief/detail: caption word count within ±tolerance of the reference's."""
    ref = count_words(reference)
    n = count_words(caption)
    return ref * (1 - tolerance) <= n <= ref * (1 + tolerance)
