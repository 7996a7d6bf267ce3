"""Build a small CLIP tokenizer offline from a text corpus.

Introduced in notebook 01_diffusion_basics (text → tokens → embeddings). Real models ship their own
tokenizer; the teaching models and the tiny random pipelines use one built here, in the exact file format of
CLIP's byte-level BPE (``vocab.json`` + ``merges.txt``), so it loads as a stock ``CLIPTokenizer``.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from transformers import CLIPTokenizer

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
_WORD = re.compile(r"[a-z]+|[0-9]|[^\sa-z0-9]+")


def _byte_alphabet() -> list[str]:
    """The 256 printable stand-ins for bytes that byte-level BPE uses (same table as GPT-2/CLIP)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return [table[b] for b in range(256)]


def _apply_merges(symbols: list[str], ranks: dict[tuple[str, str], int]) -> list[str]:
    """Byte-pair encoding of one word: repeatedly merge the adjacent pair of lowest rank."""
    while len(symbols) > 1:
        pairs = [(ranks.get(p, len(ranks)), i) for i, p in enumerate(zip(symbols, symbols[1:]))]
        rank, i = min(pairs)
        if rank == len(ranks):
            break
        symbols = symbols[:i] + [symbols[i] + symbols[i + 1]] + symbols[i + 2 :]
    return symbols


def clip_vocab_and_merges(corpus: Iterable[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocabulary and merge list under which every word of ``corpus`` becomes a single token.

    Words are lower-cased ASCII runs, as CLIP's pre-tokenizer splits them. Bytes come first (plain and
    word-final), so any other text still tokenizes, letter by letter.
    """
    alphabet = _byte_alphabet()
    tokens = alphabet + [c + "</w>" for c in alphabet]
    merges: list[tuple[str, str]] = []
    words = sorted({w for text in corpus for w in _WORD.findall(text.lower()) if w.isascii()})
    for word in words:
        # Segment the word with the merges so far (BPE: lowest rank first), then chain the segments with
        # new, highest-ranked merges. Earlier words are single tokens already, so they are unaffected.
        ranks = {pair: i for i, pair in enumerate(merges)}
        symbols = _apply_merges(list(word[:-1]) + [word[-1] + "</w>"], ranks)
        left = symbols[0]
        for right in symbols[1:]:
            merges.append((left, right))
            left = left + right
            tokens.append(left)
    vocab: dict[str, int] = {}
    for tok in tokens + [BOS, EOS]:
        vocab.setdefault(tok, len(vocab))
    return vocab, merges


def save_clip_tokenizer_files(corpus: Iterable[str], folder: str | Path) -> Path:
    """Write ``vocab.json`` and ``merges.txt`` for ``corpus`` into ``folder`` and return it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = clip_vocab_and_merges(corpus)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def build_clip_tokenizer(corpus: Iterable[str], *, model_max_length: int = 16) -> CLIPTokenizer:
    """A ``CLIPTokenizer`` whose vocabulary covers every word of ``corpus`` as one token.

    ``model_max_length`` is the padded sequence length (SD 1.5 uses 77; the teaching models need far less).
    """
    with tempfile.TemporaryDirectory() as tmp:
        save_clip_tokenizer_files(corpus, tmp)
        tok = CLIPTokenizer.from_pretrained(tmp, model_max_length=model_max_length)
    return tok


def build_t5_tokenizer(corpus: Iterable[str], *, model_max_length: int = 512) -> Any:
    """A T5-style tokenizer (SentencePiece Unigram pieces: ``▁word`` for each word of ``corpus``, single
    letters for anything else, ``</s>`` appended, ``<pad>`` = 0) built offline, for the tiny SD 3 and FLUX
    pipelines whose T5 encoders are random: real models ship their own.

    Introduced in notebook 04_prompt_walks (the tiny SD 3 and FLUX pipelines)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5Tokenizer

    words = sorted({w for text in corpus for w in _WORD.findall(text.lower()) if w.isascii()})
    letters = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789▁") | {c for w in words for c in w})
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces += [("▁" + w, -1.0) for w in words] + [(c, -10.0) for c in letters]
    model = Tokenizer(models.Unigram(pieces, unk_id=2))
    model.pre_tokenizer = pre_tokenizers.Metaspace()
    model.decoder = decoders.Metaspace()
    model.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return T5Tokenizer(tokenizer_object=model, eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                           extra_ids=0, model_max_length=model_max_length)
