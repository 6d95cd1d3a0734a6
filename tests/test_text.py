import json

import pytest
from conftest import SHARED_DATA

from anycapeval.text import (
    ConstraintParseError,
    count_sentences,
    count_sentences_v1,
    count_words,
    count_words_v1,
    parse_length_constraint,
    within_reference_band,
)


def test_word_count_rules():
    assert count_words("A black-and-white dog doesn't bark.") == 5
    assert count_words("3 cats, 42 dogs") == 2  # digits are not words
    assert count_words("猫在桌子上 and a cat") == 8  # 5 CJK characters + 3 words
    assert count_words("café naïve don’t") == 3
    assert count_words_v1("café naïve don’t") == 2 + 0  # official regex: ASCII only, curly quote splits
    assert count_words_v1("猫。") == 2  # official counts CJK punctuation


def test_sentence_count_rules():
    assert count_sentences("One. Two! Three? ") == 3
    assert count_sentences("Wait... what?!") == 2
    assert count_sentences('He said "hi." ') == 1  # a lone quote after the stop is not a sentence
    assert count_sentences_v1('He said "hi." ') == 2  # the official count treats it as one


@pytest.mark.parametrize("text,unit,low,high", [
    ("The generated caption's length needs to be 10 to 20 words.", "words", 10, 20),
    ("The generated caption's length cannot exceed three sentences.", "sentences", None, 3),
    ("The generated caption's length needs to be exactly five sentences.", "sentences", 5, 5),
    ("The generated caption's length needs to be no more than 10 words.", "words", None, 10),
    ("The generated caption's length needs to be one sentence.", "sentences", 1, 1),
    ("Keep it between twenty-five and 40 words.", "words", 25, 40),
    ("Use fewer than 12 words.", "words", None, 11),
    ("Write at least two sentences.", "sentences", 2, None),
    ("It must be a single sentence.", "sentences", 1, 1),
    ("Write more than 30 words.", "words", 31, None),
    ("Caption in 15-25 words.", "words", 15, 25),
])
def test_constraint_parser(text, unit, low, high):
    c = parse_length_constraint(text)
    assert (c.unit, c.low, c.high) == (unit, low, high)


@pytest.mark.parametrize("text", ["Make it short.", "Use 10 words and two sentences.", "between 9 and 3 words"])
def test_unparseable_constraints_are_reported(text):
    with pytest.raises(ConstraintParseError):
        parse_length_constraint(text)


def test_constraint_check():
    c = parse_length_constraint("cannot exceed two sentences.")
    assert c.check("One. Two.") and not c.check("One. Two. Three.")
    assert parse_length_constraint("exactly 3 words").check("a red ball") is True


def test_reference_band():
    ref = " ".join(["word"] * 10)
    assert within_reference_band(" ".join(["w"] * 13), ref)
    assert not within_reference_band(" ".join(["w"] * 14), ref)
    assert within_reference_band(" ".join(["w"] * 7), ref)
    assert not within_reference_band(" ".join(["w"] * 6), ref)


@pytest.mark.skipif(not (SHARED_DATA / "anycapeval").is_dir(), reason="../shared/data/anycapeval not present")
def test_every_real_constraint_parses():
    seen = set()
    for path in (SHARED_DATA / "anycapeval").glob("*/*.jsonl"):
        for line in path.read_text().splitlines():
            if line.strip():
                seen.add(json.loads(line)["restriction"][1])
    assert len(seen) >= 14
    for text in seen:
        parse_length_constraint(text)
