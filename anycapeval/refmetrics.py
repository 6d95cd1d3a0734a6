"""Reference-based caption metrics: BLEU-1..4, METEOR, ROUGE-L and CIDEr through pycocoevalcap, plus
MiniLM sentence similarity; SPICE (and SPIDEr) only when a Stanford CoreNLP/SPICE set-up is present.

Everything is computed over the whole corpus in one call, because CIDEr's IDF weights come from the
corpus: scored one clip at a time its IDF is zero and CIDEr is always 0 (the official AnyCap audio
script does exactly that). `per_item` values are each item's own score inside that corpus.
Captions are tokenised with pycocoevalcap's PTB tokenizer (Java), as in the COCO evaluation.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .types import AnyCapError

NGRAM_METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider")
OPTIONAL_METRICS = ("spice", "spider")  # need the SPICE jar's CoreNLP models (a download)
METRICS = (*NGRAM_METRICS, "minilm", *OPTIONAL_METRICS)


@dataclass
class MetricResult:
    corpus: float  # the metric over the whole corpus (CIDEr: corpus IDF; BLEU: corpus n-gram counts)
    per_item: list[float]


def spice_available() -> bool:
    """SPICE needs Stanford CoreNLP jars next to pycocoevalcap's spice-1.0.jar (fetched by a download
    this tool cannot make); set ANYCAPEVAL_SPICE=1 once they are in place."""
    if os.environ.get("ANYCAPEVAL_SPICE") != "1":
        return False
    from pycocoevalcap.spice import spice

    lib = os.path.join(os.path.dirname(spice.__file__), "lib")
    return os.path.isdir(lib) and any(name.startswith("stanford-corenlp") for name in os.listdir(lib))


Tokenized = tuple[dict[int, list[str]], dict[int, list[str]]]  # (references, candidates) by item index


def tokenize(candidates: list[str], references: list[list[str]]) -> Tokenized:
    """PTB-tokenise a corpus once (a Java process per call) for `compute` and any other n-gram use."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    def ptb(texts: dict[int, list[str]]) -> dict[int, list[str]]:
        return PTBTokenizer().tokenize({k: [{"caption": t} for t in v] for k, v in texts.items()})

    return ptb(dict(enumerate(references))), ptb({i: [c] for i, c in enumerate(candidates)})


def _minilm(candidates: list[str], references: list[list[str]]) -> list[float]:
    """Mean cosine similarity of each candidate to its references (each distinct text encoded once)."""
    from .encoder import embed

    texts = list(dict.fromkeys([*candidates, *(r for refs in references for r in refs)]))
    row = {t: i for i, t in enumerate(texts)}
    vectors = embed(texts)
    return [float((vectors[[row[r] for r in refs]] @ vectors[row[c]]).mean())
            for c, refs in zip(candidates, references)]


def compute(metrics: Sequence[str], candidates: list[str], references: list[list[str]],
            tokenized: Tokenized | None = None) -> dict[str, MetricResult]:
    """Score candidates[i] against references[i] for every requested metric (`tokenized`: the
    corpus's `tokenize` output, when the caller already has it)."""
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise AnyCapError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} reference lists")
    if not candidates:
        return {m: MetricResult(float("nan"), []) for m in metrics}
    for i, refs in enumerate(references):
        if not refs:
            raise AnyCapError(f"item {i} has no reference captions")
    wanted = set(metrics)
    if wanted & set(OPTIONAL_METRICS) and not spice_available():
        raise AnyCapError("SPICE/SPIDEr need the Stanford CoreNLP models of pycocoevalcap's SPICE, which are not "
                          "installed (a download); drop spice/spider, or install them and set ANYCAPEVAL_SPICE=1")
    out: dict[str, MetricResult] = {}
    if wanted & {*NGRAM_METRICS, *OPTIONAL_METRICS}:
        gts, res = tokenized or tokenize(candidates, references)
        out.update(_ngram(wanted, gts, res))
    if "minilm" in wanted:
        per = _minilm(candidates, references)
        out["minilm"] = MetricResult(float(np.mean(per)), per)
    return {m: out[m] for m in metrics}


def _ngram(wanted: set[str], gts: dict[int, list[str]], res: dict[int, list[str]]) -> dict[str, MetricResult]:
    out: dict[str, MetricResult] = {}
    if wanted & {"bleu1", "bleu2", "bleu3", "bleu4"}:
        from pycocoevalcap.bleu.bleu import Bleu

        corpus, per = Bleu(4).compute_score(gts, res, verbose=0)
        for n in range(4):
            out[f"bleu{n + 1}"] = MetricResult(float(corpus[n]), [float(x) for x in per[n]])
    if "meteor" in wanted:
        from pycocoevalcap.meteor.meteor import Meteor

        meteor = Meteor()
        try:
            corpus, per = meteor.compute_score(gts, res)
        finally:  # pycocoevalcap leaves its Java process running
            meteor.meteor_p.kill()
            meteor.meteor_p.wait()
        out["meteor"] = MetricResult(float(corpus), [float(x) for x in per])
    if "rouge_l" in wanted:
        from pycocoevalcap.rouge.rouge import Rouge

        corpus, per = Rouge().compute_score(gts, res)
        out["rouge_l"] = MetricResult(float(corpus), [float(x) for x in per])
    if wanted & {"cider", "spider"}:
        from pycocoevalcap.cider.cider import Cider

        corpus, per = Cider().compute_score(gts, res)
        out["cider"] = MetricResult(float(corpus), [float(x) for x in per])
    if wanted & {"spice", "spider"}:
        from pycocoevalcap.spice.spice import Spice

        corpus, per = Spice().compute_score(gts, res)
        spice_items = [float(x["All"]["f"]) for x in per]
        out["spice"] = MetricResult(float(corpus), spice_items)
        if "spider" in wanted:
            items = [(c + s) / 2 for c, s in zip(out["cider"].per_item, spice_items)]
            out["spider"] = MetricResult((out["cider"].corpus + float(corpus)) / 2, items)
    return out
