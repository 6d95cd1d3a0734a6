"""Readers of human-judgment files: FENSE votes/ties/references on hand-made entries, THumB, CSV."""

import json

import pytest
from conftest import SHARED_DATA

from anycapeval.studies.human import parse_columns, read_csv, read_fense, read_thumb
from anycapeval.types import AnyCapError, InputError

REFS = ["r one", "r two", "r three", "r four", "r five"]


def clip(**facets):
    return {"audio_id": "clip1", "raw_name": "clip1.wav", "references": REFS, **facets}


def write_fense(tmp_path, clips):
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(clips))
    return path


def test_fense_votes_ties_and_references_follow_the_protocol(tmp_path):
    path = write_fense(tmp_path, [
        clip(HC=["r one", "r two", "ground_t_1", "ground_t_2", [1, 1, -1, 1]],
             HI=["r three", "a cat meows", "ground_t_3", "ground_t_9", [1, 0, -1, 0]],
             HM=["r four", "machine words", "ground_t_4", "attn15", [-1, -1, 0, 0]],
             MM_1=["m one", "m two", "fc", "rl", 0, [1, -1, -1, -1]],  # 6 elements: votes are the last
             MM_2=None),  # null facets are skipped
    ])
    pairs = {p.facet: p for p in read_fense(path)}
    assert set(pairs) == {"HC", "HI", "HM", "MM"}
    assert pairs["HC"].vote_sum == 2 and pairs["HI"].vote_sum == 0 and pairs["HM"].vote_sum == -2
    assert pairs["MM"].vote_sum == -2
    # HC: each caption against the other references (itself removed)
    assert pairs["HC"].refs_1 == ("r two", "r three", "r four", "r five")
    assert pairs["HC"].refs_2 == ("r one", "r three", "r four", "r five")
    # HI / HM: both captions against the references minus caption 1
    assert pairs["HI"].refs_1 == pairs["HI"].refs_2 == ("r one", "r two", "r four", "r five")
    assert pairs["HM"].refs_2 == ("r one", "r two", "r three", "r five")
    # MM: all five; n-gram metrics average the five leave-one-out sets of four
    assert pairs["MM"].refs_1 == tuple(REFS)
    sets = pairs["MM"].reference_sets(1, leave_one_out=True)
    assert len(sets) == 5 and all(len(s) == 4 for s in sets) and ("r two", "r three", "r four", "r five") in sets
    assert pairs["HC"].reference_sets(2, leave_one_out=True) == [pairs["HC"].refs_2]


def test_fense_bad_votes_name_the_clip_and_field(tmp_path):
    path = write_fense(tmp_path, [clip(HC=["a", "b", "s1", "s2", [1, 2]])])
    with pytest.raises(InputError, match=r"clip 0 HC: field 'votes'"):
        read_fense(path)
    with pytest.raises(InputError, match="field 'HI'"):
        read_fense(write_fense(tmp_path, [clip(HI=["only one"])]))


def test_fense_pairs_jsonl_reads_the_same_as_the_json(tmp_path):
    line = {"audio_id": "x", "facet": "HM", "facet_key": "HM", "caption_1": "a", "caption_2": "b",
            "votes": [1, 1, 0, -1], "references": REFS, "refs_for_caption_1": REFS[1:], "refs_for_caption_2": REFS[1:]}
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(line) + "\n" + json.dumps({**line, "facet": "XX"}) + "\n")
    with pytest.raises(InputError, match=r"pairs.jsonl:2: field 'facet'"):
        read_fense(path)
    path.write_text(json.dumps(line) + "\n")
    (pair,) = read_fense(path)
    assert pair.vote_sum == 1 and pair.refs_1 == tuple(REFS[1:])


def test_thumb_reader_and_errors(tmp_path):
    row = {"image": "img1.jpg", "system": "Up-Down", "candidate": "a dog", "references": ["a dog runs", "dog"],
           "human_score": 4.5, "P": 4.0}
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps({**row, "system": "Human"}) + "\n")
    rows = read_thumb(path)
    assert [r.human for r in rows] == [4.5, 4.5] and rows[0].group == "img1.jpg" and rows[1].system == "Human"
    assert read_thumb(path, target="P")[0].human == 4.0
    path.write_text(json.dumps({**row, "human_score": "high"}) + "\n")
    with pytest.raises(InputError, match=r"t.jsonl:1: field 'human_score'"):
        read_thumb(path)


def test_csv_reader_with_json_list_and_joined_reference_columns(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text('cap,refs,r2,score,model\n"a cat","[""a cat sits"", ""cat""]",kitty,3,m1\n"a dog",dog,,x,m2\n')
    columns = parse_columns("candidate=cap,references=refs+r2,human=score,system=model")
    with pytest.raises(InputError, match=r"r.csv:3: field 'score'"):
        read_csv(path, columns)
    path.write_text('cap,refs,r2,score,model\n"a cat","[""a cat sits"", ""cat""]",kitty,3,m1\n')
    (row,) = read_csv(path, columns)
    assert row.references == ("a cat sits", "cat", "kitty") and row.human == 3.0 and row.system == "m1"
    with pytest.raises(InputError, match="no such column"):
        read_csv(path, parse_columns("candidate=caption"))
    with pytest.raises(AnyCapError, match="ROLE=COLUMN"):
        parse_columns("bogus")


@pytest.mark.skipif(not (SHARED_DATA / "human").is_dir(), reason="../shared/data/human not present")
def test_shared_fense_counts_match_the_readme():
    pairs = read_fense(SHARED_DATA / "human" / "fense_audiocaps_eval.json")
    assert len(pairs) == 1671 and sum(p.vote_sum == 0 for p in pairs) == 188
    by_facet = {f: [p for p in pairs if p.facet == f] for f in ("HC", "HI", "HM", "MM")}
    assert [len(v) for v in by_facet.values()] == [250, 250, 250, 921]
    assert sum(p.vote_sum > 0 for p in by_facet["MM"]) == 579 and sum(p.vote_sum < 0 for p in by_facet["MM"]) == 215
    flat = read_fense(SHARED_DATA / "human" / "fense_audiocaps_eval_pairs.jsonl")
    assert sorted((p.facet, p.caption_1, p.caption_2, p.vote_sum, p.refs_1, p.refs_2) for p in flat) == \
        sorted((p.facet, p.caption_1, p.caption_2, p.vote_sum, p.refs_1, p.refs_2) for p in pairs)
