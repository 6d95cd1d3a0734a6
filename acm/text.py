"""The refiner's prompt format and tokenizer.

One format serves training and refinement, so the model sees at inference exactly what it was
trained on: media placeholder tokens (replaced by projected encoder features inside the model), the
instruction, the draft caption, then the refined caption closed by the end token. Only the refined
caption (and its end token) is learned.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MEDIA_TOKENS = {"image": "<|acm_image|>", "video": "<|acm_video|>", "audio": "<|acm_audio|>"}
PAD_TOKEN = "<|acm_pad|>"
END_TOKEN = "<|acm_end|>"
NO_DRAFT = "(no draft: write the caption from the media)"


def prompt_head(instruction: str) -> str:
    return f"\nYou refine captions so they follow the request.\nRequest: {instruction.strip()}\nDraft: "


def prompt_tail() -> str:
    return "\nRefined caption: "


def train_bpe(texts: Iterable[str], vocab_size: int) -> Any:
    """A byte-level BPE trained in-process (tiny configs have no tokenizer of their own)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = [PAD_TOKEN, END_TOKEN, *MEDIA_TOKENS.values()]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = [prompt_head("") + prompt_tail() + NO_DRAFT, *texts]  # the format's own words get merges too
    tok.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD_TOKEN, eos_token=END_TOKEN,
                                   extra_special_tokens=list(MEDIA_TOKENS.values()))


def add_acm_tokens(tokenizer: Any) -> Any:
    """A pretrained LM's tokenizer gets the media placeholders (and a pad token if it has none)."""
    tokenizer.add_tokens(list(MEDIA_TOKENS.values()), special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
    if tokenizer.eos_token is None:
        tokenizer.add_special_tokens({"eos_token": END_TOKEN})
    return tokenizer


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]  # -100 outside the refined caption
    truncated: bool


def encode(tokenizer: Any, instruction: str, draft: str, n_media: int, modality: str | None,
           target: str | None, max_length: int) -> Encoded:
    """Token ids for one sample. With `target=None` this is the generation prompt. Over-long samples
    lose the end of the draft first, then the end of the target, so the request itself survives."""
    ids = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    media = [tokenizer.convert_tokens_to_ids(MEDIA_TOKENS[modality])] * n_media if modality and n_media else []
    head = media + ids(prompt_head(instruction))
    body = ids(draft.strip() or NO_DRAFT)
    tail = ids(prompt_tail())
    answer = [*ids(target.strip()), tokenizer.eos_token_id] if target is not None else []
    over = len(head) + len(body) + len(tail) + len(answer) - max_length
    truncated = over > 0
    if over > 0:
        cut = min(over, len(body))
        body = body[:len(body) - cut]
        over -= cut
    if over > 0 and answer:
        answer = answer[:max(1, len(answer) - over)]
        over = len(head) + len(body) + len(tail) + len(answer) - max_length
    if over > 0:
        raise ValueError(f"the request alone needs {len(head) + len(tail)} tokens, more than max_length {max_length}")
    prompt = head + body + tail
    return Encoded(prompt + answer, [-100] * len(prompt) + answer, truncated)
