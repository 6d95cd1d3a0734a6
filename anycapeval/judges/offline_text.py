"""Text rules of the offline judge (no model): reading key points, crude stemming, fluency errors.

Key points in AnyCapEval read like instructions to a grader: "describe the fence material (metal mesh
panels)", "mention the woman's position (left side of the frame)", "avoid mentioning the trees". What
the caption has to contain is the key point without its leading verb; the text in parentheses is the
detail that must be right; an "avoid / exclude / omit ..." key point is met when the caption does NOT
mention the thing.

Fluency errors are the ones machine captioners make and plain sentence similarity cannot see (the
FENSE paper's point): an unfinished ending ("a dog barks and a"), a phrase said twice ("a horn honks
followed by a horn honking"), a word repeated across a conjunction ("a chair and a chair"), "a"
before a vowel ("a engine"), and a subject with no verb before "is followed by" ("a gun is followed
by"). The rules were written from the error types in FENSE's fluency annotations and checked there;
they look only at word patterns, never at a list of known captions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

STOPWORDS = frozenset(
    "a an the of in on at to and or with by for from is are was were be been being it its this that these those "
    "as their his her they he she there which who into over under while then than any s".split())
# Words that say what to grade, not what the caption must contain.
_LEAD_RE = re.compile(
    r"^(?:describe|mention|identify|state|note|explain|specify|indicate|include|highlight|detail|list|point out|"
    r"convey|capture|depict|emphasi[sz]e|provide|show|reference|refer to|analy[sz]e|suggest|clarify)s?\s+"
    r"(?:the\s+)?", re.I)
_EXCLUDE_RE = re.compile(
    r"^(?:avoid|exclud\w*|omit\w*|refrain from|do not|don't|no(?=\s+(?:mention|reference)))\s*"
    r"(?:(?:any|all)\s+)?(?:mention(?:s|ing)?(?:\s+of)?|referr?(?:ing|ences?)?(?:\s+to)?|describing|"
    r"including)?\s*(?:(?:any|all)\s+)?(?:of\s+)?(?:the\s+)?", re.I)
_INNER_EXCLUDE_RE = re.compile(r"\b(?:while|without)\s+(?:omitting|excluding|mentioning|ignoring)\s+(?:the\s+)?(.+)$",
                               re.I)
_PAREN_RE = re.compile(r"\(([^()]*)\)")
_WORD_RE = re.compile(r"[A-Za-z0-9']+")


@dataclass(frozen=True)
class KeyPoint:
    text: str  # what the caption must mention (leading verb and brackets removed)
    detail: str  # the part that must be right: the bracketed text, else `text`
    exclude: bool  # True: the key point is met when `text` is NOT mentioned


@lru_cache(maxsize=65536)
def read_key_point(key_point: str) -> KeyPoint:
    raw = key_point.strip()
    inner = _INNER_EXCLUDE_RE.search(raw)
    exclude_match = _EXCLUDE_RE.match(raw)
    if inner:  # "describe the environment while omitting the trampoline"
        return KeyPoint(_clean(inner.group(1)), _clean(inner.group(1)), True)
    if exclude_match and exclude_match.end() < len(raw):
        thing = _clean(raw[exclude_match.end():])
        return KeyPoint(thing, thing, True)
    body = _LEAD_RE.sub("", raw)
    text = _clean(body)
    details = " ".join(d.strip() for d in _PAREN_RE.findall(body) if d.strip())
    return KeyPoint(text, details or text, False)


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("(", " ").replace(")", " ")).strip(" .,;:") or text.strip()


def stem(word: str) -> str:
    """A crude suffix stripper: enough to match "bleats"/"bleating"/"bleat" and "trees"/"tree"."""
    w = word.lower().strip("'")
    for suffix in ("ing", "es", "ed", "ly", "s"):
        if len(w) > len(suffix) + 2 and w.endswith(suffix):
            return w[:-len(suffix)]
    return w


def content_stems(text: str) -> set[str]:
    return {stem(w) for w in _WORD_RE.findall(text) if w.lower() not in STOPWORDS}


def lexical_coverage(detail: str, caption_stems: set[str]) -> float:
    """Share of the detail's content words (stemmed) that occur in the caption."""
    wanted = content_stems(detail)
    return len(wanted & caption_stems) / len(wanted) if wanted else 0.0


# -- fluency -----------------------------------------------------------------------------------------

_DANGLING = frozenset("a an the and or of in on at to as with from followed then while before after into onto its "
                      "their his her several series is are".split())
_NO_VERB_RE = re.compile(r"\b(?:a|an)\s+(?:[a-z']+\s+){0,2}[a-z']+(?<!ing)\s+(?:is|are)\s+followed\s+by\b")
_ACROSS_RE = re.compile(r"\b([a-z']+)\s+(?:and then|and|or|followed by|then)\s+"
                        r"(?:(?:a|an|the|more|some)\s+)?([a-z']+)\b")


@lru_cache(maxsize=65536)
def fluency_errors(caption: str) -> tuple[str, ...]:
    """Names of the fluency errors found (empty: none)."""
    words = [w.lower() for w in _WORD_RE.findall(caption)]
    if not words:
        return ("empty",)
    found = []
    if words[-1] in _DANGLING or (words[-1] == "by" and len(words) > 1 and words[-2] == "followed"):
        found.append("unfinished")
    content = [stem(w) for w in words if w not in STOPWORDS]
    pairs = list(zip(content, content[1:]))
    if len(pairs) != len(set(pairs)):
        found.append("repeated_phrase")
    joined = " ".join(words)
    if any(m.group(1) not in STOPWORDS and stem(m.group(1)) == stem(m.group(2)) for m in _ACROSS_RE.finditer(joined)):
        found.append("repeated_word")
    if any(a == "a" and b[0] in "aeio" for a, b in zip(words, words[1:])):
        found.append("article")
    if _NO_VERB_RE.search(joined):
        found.append("missing_verb")
    return tuple(found)
