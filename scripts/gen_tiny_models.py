#!/usr/bin/env python3
"""Writes the tiny-model oracle fixtures in tests/data/models/ (docs/ORACLES.md describes them).

For each fixture it builds a small random Hugging Face model in float32, converts it to GGUF the
way llama.cpp's convert_hf_to_gguf.py does (same tensor names, metadata keys and weight
transforms; the code here is our own), and saves transformers' float32 outputs as references:
logits at every position of 3 or 4 prompts, the residual stream after every layer for one prompt,
and a 16-token greedy continuation.

    python scripts/gen_tiny_models.py              # (re)writes tests/data/models/
    python scripts/gen_tiny_models.py --check      # regenerates into a temp dir, compares with
                                                   # the committed fixtures, writes nothing
    python scripts/gen_tiny_models.py --only tiny-qwen3 --out /tmp/x
    python scripts/gen_tiny_models.py --llama-cpp  # runs the committed fixtures through llama.cpp
                                                   # (needs llama-cpp-python, not pinned here)

Needs the oracle venv (requirements-oracle.txt: torch CPU, transformers, gguf, numpy, regex).
Deterministic: weights and prompts come from seeded numpy generators, torch runs on 1 thread,
so a rerun on the same versions writes the same GGUF bytes and the same reference floats.

Every written GGUF is verified three ways before its references are saved:
  1. our own reader (dequantize + undo the transforms) must give back the model's weights exactly
     (F32) or the dequantized weights the references are computed from (F16, Q8_0);
  2. transformers loads the GGUF (AutoModelForCausalLM, gguf_file=...) with the config it rebuilds
     from the metadata; for qwen3, gemma3 and llama3 rope scaling that config is known to be
     incomplete (KNOWN_CONFIG_GAPS): the mismatch is reported, and the load is repeated with
     just the missing field set, which must match;
  3. transformers loads the GGUF again with our config, which checks only its weight reversal
     (un-permute, norm -1); its logits must match the references.
"""

from __future__ import annotations

import argparse
import collections
import copy
import hashlib
import importlib.metadata
import json
import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "data" / "models"

N_GREEDY = 16
RANDOM_PROMPT_LENGTHS = (33, 64)
HIDDEN_PROMPT = 2  # index of the prompt whose per-layer hidden states are saved (33 tokens)
CHECK_PROMPT = 2  # the prompt the verification checks run on (the longest the fixture keeps)
GREEDY_PROMPT = 1  # the text prompt

# Round-trip through transformers' own GGUF config: what it cannot rebuild from the metadata, and
# the one config field that, set by hand, makes its load match (checked as "gguf_config_patched").
KNOWN_CONFIG_GAPS = {
    "tiny-llama3": (
        "transformers ignores rope_freqs.weight: it rebuilds no llama3 rope scaling",
        "rope_parameters",
    ),
    "tiny-qwen3": (
        "transformers does not read qwen3.attention.key_length: head_dim falls back to 128",
        "head_dim",
    ),
    "tiny-gemma3": (
        "transformers rebuilds no query_pre_attn_scalar (its default 256; llama.cpp scales by "
        "1/sqrt(head_dim) = 1/sqrt(16))",
        "query_pre_attn_scalar",
    ),
}

# Text the tiny tokenizers are trained on. Any text works; this mixes prose, code and digits.
CORPUS = """\
The small model reads the prompt, one token at a time, and writes the next token.
A tokenizer turns text into numbers; the model turns numbers into other numbers.
def forward(x, weights):
    for layer in weights.layers:
        x = x + layer.attention(layer.norm(x))
        x = x + layer.feed_forward(layer.ffn_norm(x))
    return weights.output(weights.norm(x))
The cache keeps the keys and the values, so that each new token only needs one row.
Tests compare the logits of the engine with the logits of the reference, position by position.
int main(void) { return 0; } // 12 + 34 = 46, 2024-01-31, 3.14159
When the window slides, the oldest tokens fall out of the attention of local layers,
while the global layers still see every token from the start of the prompt.
"""

TEXT_PROMPT = "The model writes tokens"

CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

GPT2_SPLIT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


# ---------------------------------------------------------------------------------------------
# Fixture specs


@dataclass
class Spec:
    name: str
    arch: str  # GGUF general.architecture
    seed: int
    description: str
    config: dict  # transformers config kwargs
    tokenizer: str  # "smollm" | "qwen2" | "gemma"
    file_type: str = "F32"  # F32 | F16 | Q8_0
    weights_from: str | None = None  # reuse the weights of this spec (F16/Q8_0 copies)
    random_prompts: tuple = RANDOM_PROMPT_LENGTHS  # F16/Q8_0 copies keep only the 33-token one
    write_key_length: bool = (
        False  # llama.cpp writes key/value_length when config.json has head_dim
    )
    weight_std: float = 0.15
    norm_std: float = 0.1
    bias_std: float = 0.1


def llama_config(**kw) -> dict:
    base = dict(
        vocab_size=320,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": 100000.0},
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    base.update(kw)
    return base


def qwen_config(**kw) -> dict:
    base = dict(
        vocab_size=320,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rms_norm_eps=1e-6,
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
        tie_word_embeddings=False,
        use_sliding_window=False,
        bos_token_id=317,
        eos_token_id=319,
        pad_token_id=317,
    )
    base.update(kw)
    return base


SPECS = [
    Spec(
        "tiny-llama",
        "llama",
        seed=1001,
        description="SmolLM2-shaped llama: GQA 4/2, head_dim 16, tied embeddings, rope base 1e5, "
        "no rope scaling, Q/K rows permuted for llama.cpp's non-NeoX rope",
        config=llama_config(),
        tokenizer="smollm",
    ),
    Spec(
        "tiny-llama-f16",
        "llama",
        seed=1001,
        description="tiny-llama with every 2-D weight stored as F16 (norms stay F32); references "
        "come from the F16-rounded weights",
        config=llama_config(),
        tokenizer="smollm",
        file_type="F16",
        weights_from="tiny-llama",
        random_prompts=(33,),
    ),
    Spec(
        "tiny-llama-q8_0",
        "llama",
        seed=1001,
        description="tiny-llama with every 2-D weight stored as Q8_0 (norms stay F32); references "
        "come from the dequantized Q8_0 weights",
        config=llama_config(),
        tokenizer="smollm",
        file_type="Q8_0",
        weights_from="tiny-llama",
        random_prompts=(33,),
    ),
    Spec(
        "tiny-llama3",
        "llama",
        seed=1002,
        description="Llama-3.2-shaped llama: llama3 rope scaling (factor 8, low 1, high 4, "
        "original context 64) stored as rope_freqs.weight, tied embeddings, rope base 5e5, "
        "explicit key_length/value_length",
        config=llama_config(
            max_position_embeddings=512,
            rope_parameters={
                "rope_type": "llama3",
                "rope_theta": 500000.0,
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
        ),
        tokenizer="smollm",
        write_key_length=True,
    ),
    Spec(
        "tiny-qwen2",
        "qwen2",
        seed=1003,
        description="Qwen2.5-shaped qwen2: q/k/v biases, NeoX rope base 1e6, separate "
        "output.weight, GQA 4/2, head_dim 16",
        config=qwen_config(),
        tokenizer="qwen2",
    ),
    Spec(
        "tiny-qwen3",
        "qwen3",
        seed=1004,
        description="Qwen3-shaped qwen3: per-head q/k RMSNorm, explicit head_dim 32 (q is 128 "
        "wide, hidden is 64), NeoX rope base 2e4, tied embeddings, no biases",
        config=qwen_config(
            head_dim=32,
            attention_bias=False,
            tie_word_embeddings=True,
            rope_parameters={"rope_type": "default", "rope_theta": 20000.0},
        ),
        tokenizer="qwen2",
        write_key_length=True,
    ),
    Spec(
        "tiny-gemma3",
        "gemma3",
        seed=1005,
        description="Gemma-3-shaped gemma3: 6 layers (0-4 sliding window 8, layer 5 global), "
        "MQA 4/1, head_dim 16 (q is 64 wide, hidden is 32), q/k norms, pre+post norms, GeGLU "
        "(tanh gelu), embeddings scaled by sqrt(32), norm weights stored +1, rope base 1e6 "
        "global / 1e4 local, query_pre_attn_scalar = head_dim, no softcapping, tied embeddings",
        config=dict(
            vocab_size=384,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=6,
            num_attention_heads=4,
            num_key_value_heads=1,
            head_dim=16,
            query_pre_attn_scalar=16,
            sliding_window=8,
            max_position_embeddings=256,
            rms_norm_eps=1e-6,
            rope_parameters={
                "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                "full_attention": {"rope_type": "default", "rope_theta": 1000000.0},
            },
            final_logit_softcapping=None,
            attn_logit_softcapping=None,
            hidden_activation="gelu_pytorch_tanh",
            tie_word_embeddings=True,
            bos_token_id=2,
            eos_token_id=1,
            pad_token_id=0,
        ),
        tokenizer="gemma",
        write_key_length=True,
        weight_std=0.2,
    ),
]


# ---------------------------------------------------------------------------------------------
# Tokenizers (tiny, trained here on CORPUS; valid, not good)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1))
    bs += list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def train_bpe(words: collections.Counter, n_merges: int) -> list[tuple[str, str]]:
    """Plain BPE on words given as tuples of symbols. Ties go to the smallest pair, so the result
    does not depend on dict order."""
    words = {tuple(w): c for w, c in words.items()}
    merges = []
    for _ in range(n_merges):
        pairs: collections.Counter = collections.Counter()
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] += c
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + c
        words = merged
    return merges


def gpt2_vocab(vocab_size: int, specials: list[str], specials_first: bool) -> dict:
    import regex

    enc = bytes_to_unicode()
    words: collections.Counter = collections.Counter()
    for piece in regex.findall(GPT2_SPLIT, CORPUS):
        words[tuple(enc[b] for b in piece.encode("utf-8"))] += 1
    n_merges = vocab_size - 256 - len(specials)
    merges = train_bpe(words, n_merges)
    assert len(merges) == n_merges, "corpus too small for this vocabulary"
    base = list(enc.values())
    bpe_tokens = base + [a + b for a, b in merges]
    assert len(set(bpe_tokens)) == len(bpe_tokens)
    tokens = specials + bpe_tokens if specials_first else bpe_tokens + specials
    types = [3 if t in specials else 1 for t in tokens]
    return {
        "model": "gpt2",
        "tokens": tokens,
        "token_type": types,
        "merges": [f"{a} {b}" for a, b in merges],
    }


def gemma_vocab(vocab_size: int) -> dict:
    """A SentencePiece-BPE vocabulary laid out like Gemma 3's: control tokens, user-defined
    newline tokens, 256 byte-fallback tokens, then pieces (merged pieces first, single characters
    last), with scores that fall with the index."""
    control = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>"]
    user_defined = ["\n", "\n\n"]
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    # SentencePiece: spaces become U+2581, each piece starts at a space; newlines are user tokens.
    units: collections.Counter = collections.Counter()
    for line in CORPUS.split("\n"):
        text = line.replace(" ", "\u2581")
        for i, part in enumerate(text.split("\u2581")):
            unit = part if i == 0 else "\u2581" + part
            if unit:
                units[tuple(unit)] += 1
    chars_count: collections.Counter = collections.Counter()
    for u, c in units.items():
        for ch in u:
            chars_count[ch] += c
    chars = sorted(chars_count, key=lambda ch: (-chars_count[ch], ch))
    n_fixed = len(control) + len(user_defined) + len(byte_tokens)
    n_merges = vocab_size - n_fixed - len(chars)
    merges = train_bpe(units, n_merges)
    assert len(merges) == n_merges, "corpus too small for this vocabulary"
    pieces = [a + b for a, b in merges] + chars
    assert len(set(pieces)) == len(pieces)
    tokens = control + user_defined + byte_tokens + pieces
    types = [2 if t == "<unk>" else 3 for t in control] + [4] * len(user_defined)
    types += [6] * len(byte_tokens) + [1] * len(pieces)
    scores = [-1000.0] * (len(control) + len(user_defined)) + [0.0] * len(byte_tokens)
    scores += [-float(i) for i in range(len(pieces))]
    return {"model": "llama", "tokens": tokens, "token_type": types, "scores": scores}


def build_vocab(spec: Spec) -> dict:
    v = spec.config["vocab_size"]
    if spec.tokenizer == "smollm":
        vocab = gpt2_vocab(v, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], specials_first=True)
        vocab.update(
            pre="smollm", bos=1, eos=2, unk=0, pad=2, add_bos=False, add_space_prefix=False
        )
        vocab["chat_template"] = CHATML_TEMPLATE
    elif spec.tokenizer == "qwen2":
        vocab = gpt2_vocab(v, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], specials_first=False)
        vocab.update(pre="qwen2", bos=v - 3, eos=v - 1, unk=None, pad=v - 3, add_bos=False)
        vocab["chat_template"] = CHATML_TEMPLATE
    elif spec.tokenizer == "gemma":
        vocab = gemma_vocab(v)
        vocab.update(pre="default", bos=2, eos=1, unk=3, pad=0, add_bos=True, add_eos=False)
        vocab.update(add_space_prefix=False, add_sep=False)
    else:
        raise ValueError(spec.tokenizer)
    assert len(vocab["tokens"]) == v
    cfg = spec.config
    assert (cfg["bos_token_id"], cfg["eos_token_id"]) == (vocab["bos"], vocab["eos"])
    return vocab


# ---------------------------------------------------------------------------------------------
# Hugging Face models


def hf_classes(arch: str):
    import transformers as tf

    return {
        "llama": (tf.LlamaConfig, tf.LlamaForCausalLM),
        "qwen2": (tf.Qwen2Config, tf.Qwen2ForCausalLM),
        "qwen3": (tf.Qwen3Config, tf.Qwen3ForCausalLM),
        "gemma3": (tf.Gemma3TextConfig, tf.Gemma3ForCausalLM),
    }[arch]


def make_config(spec: Spec):
    config_cls, _ = hf_classes(spec.arch)
    return config_cls(**spec.config, attn_implementation="eager", dtype="float32")


def make_model(spec: Spec):
    """The float32 HF model with seeded weights. Norm weights are drawn around 1 (Gemma: around 0,
    since Gemma3RMSNorm multiplies by 1 + w), so a missing or doubled +1 shows in the logits."""
    import torch

    _, model_cls = hf_classes(spec.arch)
    model = model_cls(make_config(spec)).eval()
    rng = np.random.default_rng(spec.seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            shape = tuple(p.shape)
            if name.endswith("norm.weight"):
                x = rng.normal(0.0, spec.norm_std, shape)
                if spec.arch == "gemma3":
                    # values w with (w + 1) - 1 == w in float32, so the F32 GGUF (which stores
                    # w + 1) holds exactly the weights the references use
                    x = (np.clip(x, -0.45, 0.45).astype(np.float32) + np.float32(1)) - np.float32(1)
                else:
                    x += 1.0
            elif name.endswith(".bias"):
                x = rng.normal(0.0, spec.bias_std, shape)
            else:
                x = rng.normal(0.0, spec.weight_std, shape)
            p.copy_(torch.from_numpy(x.astype(np.float32)))
    return model


# ---------------------------------------------------------------------------------------------
# HF -> GGUF (llama.cpp's conventions)


def permute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's LlamaModel.permute: within each head, rows [x0..x_{d/2-1}, y0..y_{d/2-1}]
    (HF's rotate_half layout) become interleaved [x0, y0, x1, y1, ...] (ggml's normal rope)."""
    d = w.shape[0] // n_head
    return w.reshape(n_head, 2, d // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    d = w.shape[0] // n_head
    return w.reshape(n_head, d // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_factors(rope: dict, head_dim: int) -> np.ndarray:
    """rope_freqs.weight as llama.cpp computes it: ggml divides each rotation frequency by its
    factor, HF's llama3 rope multiplies by the reciprocal. Uses the HF rope_scaling's
    original_max_position_embeddings (the converter reads a top-level key, 8192 by default)."""
    base = rope["rope_theta"]
    freqs = 1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
    old_ctx = rope["original_max_position_embeddings"]
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    out = []
    for f in freqs:
        wavelen = 2 * math.pi / f
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


def gguf_tensor_names(spec: Spec, state_dict_names: list[str]) -> dict[str, str]:
    """HF parameter name -> GGUF tensor name, through gguf-py's TensorNameMap for the arch."""
    import gguf

    arch = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == spec.arch)
    tmap = gguf.get_tensor_name_map(arch, spec.config["num_hidden_layers"])
    out = {}
    for hf in state_dict_names:
        base, suffix = hf.rsplit(".", 1)
        name = tmap.get_name(base)
        if name is None:
            raise KeyError(f"{spec.name}: no GGUF name for {hf}")
        out[hf] = f"{name}.{suffix}"
    return out


def hf_to_gguf_tensors(spec: Spec, model) -> list[tuple[str, str, np.ndarray]]:
    """(hf_name, gguf_name, float32 array) in writing order, with llama.cpp's transforms."""
    cfg = spec.config
    sd = {k: v.detach().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    if cfg["tie_word_embeddings"]:
        sd.pop("lm_head.weight")  # llama.cpp writes no output.weight for a tied model
    names = gguf_tensor_names(spec, list(sd))
    out = []
    for hf, arr in sd.items():
        g = names[hf]
        if spec.arch == "llama" and g.endswith(("attn_q.weight", "attn_q.bias")):
            arr = permute_qk(arr, cfg["num_attention_heads"])
        elif spec.arch == "llama" and g.endswith(("attn_k.weight", "attn_k.bias")):
            arr = permute_qk(arr, cfg["num_key_value_heads"])
        if spec.arch == "gemma3" and hf.endswith("norm.weight"):
            arr = arr + np.float32(1.0)  # Gemma3RMSNorm scales by (1 + w); ggml's by w
        out.append((hf, g, arr))
    order = {"token_embd.weight": 0, "output_norm.weight": 2, "output.weight": 3}
    out.sort(key=lambda t: (order.get(t[1], 1), layer_of(t[1]), t[1]))
    if cfg["rope_parameters"].get("rope_type") == "llama3":
        head_dim = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        out.insert(
            1, (None, "rope_freqs.weight", llama3_rope_factors(cfg["rope_parameters"], head_dim))
        )
    return out


def layer_of(gguf_name: str) -> int:
    return int(gguf_name.split(".")[1]) if gguf_name.startswith("blk.") else -1


def storage_type(spec: Spec, arr: np.ndarray):
    """llama.cpp's --outtype rule: 1-D tensors (norms, biases, rope_freqs) stay F32."""
    import gguf

    QT = gguf.GGMLQuantizationType
    if spec.file_type == "F32" or arr.ndim < 2:
        return QT.F32
    return {"F16": QT.F16, "Q8_0": QT.Q8_0}[spec.file_type]


def write_gguf(spec: Spec, model, vocab: dict, path: Path) -> None:
    import gguf

    cfg = spec.config
    arch = spec.arch
    w = gguf.GGUFWriter(str(path), arch)
    w.add_type("model")
    w.add_name(f"sift {spec.name}")
    w.add_description(spec.description)
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    rope = cfg["rope_parameters"]
    w.add_rope_freq_base(
        float(rope["full_attention"]["rope_theta"] if arch == "gemma3" else rope["rope_theta"])
    )
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    if spec.write_key_length:
        w.add_key_length(cfg["head_dim"])
        w.add_value_length(cfg["head_dim"])
    file_type = {"F32": 0, "F16": 1, "Q8_0": 7}[spec.file_type]
    w.add_file_type(file_type)
    if arch == "llama":
        w.add_vocab_size(cfg["vocab_size"])
        w.add_rope_dimension_count(
            cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
        )
    if arch == "gemma3":
        w.add_sliding_window(cfg["sliding_window"])
    # tokenizer
    w.add_tokenizer_model(vocab["model"])
    w.add_tokenizer_pre(vocab["pre"])
    w.add_token_list(vocab["tokens"])
    if "scores" in vocab:
        w.add_token_scores(vocab["scores"])
    w.add_token_types(vocab["token_type"])
    if "merges" in vocab:
        w.add_token_merges(vocab["merges"])
    w.add_bos_token_id(vocab["bos"])
    w.add_eos_token_id(vocab["eos"])
    if vocab.get("unk") is not None:
        w.add_unk_token_id(vocab["unk"])
    w.add_pad_token_id(vocab["pad"])
    w.add_add_bos_token(vocab["add_bos"])
    if "add_eos" in vocab:
        w.add_add_eos_token(vocab["add_eos"])
    if "add_sep" in vocab:
        w.add_add_sep_token(vocab["add_sep"])
    if "add_space_prefix" in vocab:
        w.add_add_space_prefix(vocab["add_space_prefix"])
    if vocab.get("chat_template"):
        w.add_chat_template(vocab["chat_template"])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    for _, name, arr in hf_to_gguf_tensors(spec, model):
        qt = storage_type(spec, arr)
        if qt == gguf.GGMLQuantizationType.F32:
            w.add_tensor(name, arr.astype(np.float32))
        elif qt == gguf.GGMLQuantizationType.F16:
            w.add_tensor(name, arr.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(arr, qt), raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


# ---------------------------------------------------------------------------------------------
# GGUF -> HF (our own reader, independent of transformers)


def read_gguf_weights(spec: Spec, model, path: Path) -> dict:
    """The HF state dict the GGUF stores: dequantized, transforms undone."""
    import gguf

    cfg = spec.config
    r = gguf.GGUFReader(str(path))
    sd_names = list(model.state_dict())
    if cfg["tie_word_embeddings"]:
        sd_names.remove("lm_head.weight")
    to_hf = {g: hf for hf, g in gguf_tensor_names(spec, sd_names).items()}
    out, extra = {}, {}
    for t in r.tensors:
        arr = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        shape = tuple(int(x) for x in reversed(t.shape.tolist()))
        arr = arr.reshape(shape)
        g = t.name
        if g not in to_hf:
            extra[g] = arr
            continue
        if spec.arch == "llama" and g.endswith(("attn_q.weight", "attn_q.bias")):
            arr = unpermute_qk(arr, cfg["num_attention_heads"])
        elif spec.arch == "llama" and g.endswith(("attn_k.weight", "attn_k.bias")):
            arr = unpermute_qk(arr, cfg["num_key_value_heads"])
        if spec.arch == "gemma3" and g.endswith("norm.weight"):
            arr = arr - np.float32(1.0)
        out[to_hf[g]] = arr
    missing = set(sd_names) - set(out)
    if missing:
        raise ValueError(f"{path}: missing {sorted(missing)}")
    return {"weights": out, "extra": extra}


def load_weights(model, weights: dict) -> None:
    import torch

    with torch.no_grad():
        params = dict(model.named_parameters())
        for k, v in weights.items():
            params[k].copy_(torch.from_numpy(v))


# ---------------------------------------------------------------------------------------------
# References


def run_logits(model, ids: list[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        out = model(torch.tensor([ids]), use_cache=False)
    return out.logits[0].float().numpy()


def run_hidden(model, ids: list[int]) -> np.ndarray:
    """[n_layer + 2, n_tokens, n_embd]: index 0 is the decoder's input (embeddings, after Gemma's
    sqrt(n_embd) scale), index i the residual stream after layer i-1, the last the output of the
    final norm. Captured with hooks and checked against HF's output_hidden_states."""
    import torch

    layers = model.model.layers
    captured: list = []

    def hook(_module, _args, output):
        captured.append((output[0] if isinstance(output, tuple) else output)[0].detach().clone())

    handles = [layer.register_forward_hook(hook) for layer in layers]
    try:
        with torch.no_grad():
            out = model(torch.tensor([ids]), output_hidden_states=True, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    hs = out.hidden_states
    assert len(hs) == len(layers) + 1
    for i in range(len(layers) - 1):
        assert torch.equal(
            hs[i + 1][0], captured[i]
        ), f"layer {i} hook disagrees with hidden_states"
    with torch.no_grad():
        normed = model.model.norm(captured[-1])
    assert torch.equal(hs[-1][0], normed), "HF's last hidden state is not the final norm output"
    stack = [hs[0][0]] + captured + [normed]
    return torch.stack(stack).float().numpy()


def run_greedy(model, ids: list[int], n: int) -> tuple[list[int], float]:
    """Greedy continuation by full recomputation (no KV cache), and the smallest top-1 - top-2
    logit gap seen over the steps (how robust the argmax is to rounding)."""
    seq = list(ids)
    margin = float("inf")
    for _ in range(n):
        last = run_logits(model, seq)[-1]
        top2 = np.sort(last)[-2:]
        margin = min(margin, float(top2[1] - top2[0]))
        seq.append(int(np.argmax(last)))
    return seq[len(ids) :], margin


def make_prompts(spec: Spec, vocab: dict, tokenizer) -> list[dict]:
    rng = np.random.default_rng(spec.seed + 7)
    v = spec.config["vocab_size"]
    text_ids = tokenizer(TEXT_PROMPT)["input_ids"]
    prompts = [
        {"name": "bos", "ids": [vocab["bos"]]},
        {"name": "text", "ids": text_ids, "text": TEXT_PROMPT},
    ]
    for n in spec.random_prompts:
        prompts.append({"name": f"random{n}", "ids": rng.integers(0, v, n).tolist()})
    return prompts


def hf_tokenizer(gguf_path: Path):
    import transformers
    from transformers import AutoTokenizer

    transformers.logging.set_verbosity_error()
    return AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)


# ---------------------------------------------------------------------------------------------
# Verification through transformers' GGUF loader


def transformers_roundtrip(
    spec: Spec, path: Path, ref_model, ids: list[int], ref: np.ndarray
) -> dict:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    result = {}
    scale = float(np.abs(ref).max())
    modes = ["gguf_config", "our_config"]
    if spec.name in KNOWN_CONFIG_GAPS:
        modes.insert(1, "gguf_config_patched")
    for mode in modes:
        kw = {}
        if mode == "our_config":
            kw["config"] = copy.deepcopy(ref_model.config)
        elif mode == "gguf_config_patched":
            cfg = AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name)
            key = KNOWN_CONFIG_GAPS[spec.name][1]
            setattr(cfg, key, copy.deepcopy(getattr(ref_model.config, key)))
            kw["config"] = cfg
        try:
            m = AutoModelForCausalLM.from_pretrained(
                str(path.parent),
                gguf_file=path.name,
                dtype=torch.float32,
                attn_implementation="eager",
                **kw,
            ).eval()
            got = run_logits(m, ids)
            diff = float(np.abs(got - ref).max()) if got.shape == ref.shape else float("inf")
            result[mode] = {"max_abs_diff": diff, "max_rel_diff": diff / scale}
        except Exception as e:  # report, never hide: an arch transformers cannot load
            result[mode] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"}
    return result


def fp64_error(model, ids: list[int], ref: np.ndarray) -> dict:
    """How far float32 is from float64 on this model: the floor for any tolerance."""
    m64 = copy.deepcopy(model).double()
    got = run_logits(m64, ids)
    diff = np.abs(ref.astype(np.float64) - got)
    return {
        "max_abs_diff": float(diff.max()),
        "max_rel_diff": float(diff.max() / np.abs(got).max()),
    }


def q8_activation_error(model, ids: list[int], ref: np.ndarray) -> dict:
    """How far the logits move when every linear layer's input is rounded to Q8_0 blocks (what
    ggml's quantized matmul does to activations). Engines that do this need a looser tolerance."""
    import gguf
    import torch

    m = copy.deepcopy(model)

    def pre_hook(_module, args):
        x = args[0]
        shape = x.shape
        if shape[-1] % 32:
            return None
        flat = x.detach().reshape(-1, shape[-1]).numpy().astype(np.float32)
        qt = gguf.GGMLQuantizationType.Q8_0
        deq = gguf.quants.dequantize(gguf.quants.quantize(flat, qt), qt).reshape(shape)
        return (torch.from_numpy(deq),)

    for mod in m.modules():
        if isinstance(mod, torch.nn.Linear):
            mod.register_forward_pre_hook(pre_hook)
    got = run_logits(m, ids)
    diff = np.abs(got - ref)
    top1 = float(np.mean(np.argmax(got, -1) == np.argmax(ref, -1)))
    return {
        "max_abs_diff": float(diff.max()),
        "max_rel_diff": float(diff.max() / np.abs(ref).max()),
        "top1": top1,
    }


# ---------------------------------------------------------------------------------------------
# Writing one fixture


def save_f32(path: Path, arr: np.ndarray) -> None:
    np.ascontiguousarray(arr, dtype="<f4").tofile(path)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def generate(spec: Spec, out_root: Path, models: dict, quiet: bool = False) -> dict:
    import torch
    import transformers

    out = out_root / spec.name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    model = models[spec.weights_from] if spec.weights_from else make_model(spec)
    models[spec.name] = model
    vocab = build_vocab(spec)
    gguf_path = out / "model.gguf"
    write_gguf(spec, model, vocab, gguf_path)

    # 1. our reader gives back what the references are computed from
    back = read_gguf_weights(spec, model, gguf_path)
    if spec.file_type == "F32":
        for k, v in back["weights"].items():
            if not np.array_equal(v, model.state_dict()[k].numpy()):
                raise AssertionError(f"{spec.name}: {k} does not round-trip exactly")
        ref_model = model
    else:
        ref_model = copy.deepcopy(model)
        load_weights(ref_model, back["weights"])
    if "rope_freqs.weight" in back["extra"]:
        # the factors must turn HF's unscaled frequencies into the llama3-scaled ones it uses
        cfg = spec.config
        head_dim = cfg["head_dim"]
        base = 1.0 / (
            cfg["rope_parameters"]["rope_theta"] ** (np.arange(0, head_dim, 2) / head_dim)
        )
        scaled = ref_model.model.rotary_emb.inv_freq.numpy().astype(np.float64)
        rel = np.abs(base / back["extra"]["rope_freqs.weight"] - scaled) / scaled
        if rel.max() > 1e-6:
            raise AssertionError(
                f"{spec.name}: rope_freqs disagree with HF's inv_freq ({rel.max()})"
            )

    tokenizer = hf_tokenizer(gguf_path)
    prompts = make_prompts(spec, vocab, tokenizer)
    entries = []
    for i, p in enumerate(prompts):
        logits = run_logits(ref_model, p["ids"])
        fname = f"logits_{i}.bin"
        save_f32(out / fname, logits)
        p["logits"] = fname
        entries.append(logits)
    n_layer = spec.config["num_hidden_layers"]
    hidden = run_hidden(ref_model, prompts[HIDDEN_PROMPT]["ids"])
    save_f32(out / "hidden.bin", hidden)
    long_ids, long_ref = prompts[CHECK_PROMPT]["ids"], entries[CHECK_PROMPT]
    if spec.random_prompts == RANDOM_PROMPT_LENGTHS:
        long_ids, long_ref = prompts[-1]["ids"], entries[-1]
    assert np.array_equal(run_logits(ref_model, long_ids), long_ref), "logits not reproducible"
    greedy_ids, margin = run_greedy(ref_model, prompts[GREEDY_PROMPT]["ids"], N_GREEDY)
    gen_config = copy.deepcopy(ref_model.generation_config)
    gen_config.update(max_new_tokens=N_GREEDY, do_sample=False, pad_token_id=vocab["pad"])
    with torch.no_grad():  # the same continuation through HF's cached generate()
        gen = ref_model.generate(
            torch.tensor([prompts[GREEDY_PROMPT]["ids"]]), generation_config=gen_config
        )
    gen_ids = gen[0, len(prompts[GREEDY_PROMPT]["ids"]) :].tolist()
    # generate() stops at the model's EOS whatever the config says; the prefix must agree
    generate_agrees = gen_ids == greedy_ids[: len(gen_ids)] and (
        len(gen_ids) == N_GREEDY or gen_ids[-1] == vocab["eos"]
    )

    checks = {
        "prompt": len(long_ids),
        "greedy_matches_hf_generate": generate_agrees,
        "fp64": fp64_error(ref_model, long_ids, long_ref),
        "q8_0_activations": q8_activation_error(ref_model, long_ids, long_ref),
        "transformers_gguf": transformers_roundtrip(spec, gguf_path, ref_model, long_ids, long_ref),
    }
    if spec.name in KNOWN_CONFIG_GAPS:
        checks["transformers_gguf"]["gguf_config_known_gap"] = KNOWN_CONFIG_GAPS[spec.name][0]

    cfg = spec.config
    manifest = {
        "name": spec.name,
        "description": spec.description,
        "gguf": "model.gguf",
        "gguf_sha256": sha256(gguf_path),
        "arch": spec.arch,
        "file_type": spec.file_type,
        "n_vocab": cfg["vocab_size"],
        "n_embd": cfg["hidden_size"],
        "n_layer": n_layer,
        "n_head": cfg["num_attention_heads"],
        "n_head_kv": cfg["num_key_value_heads"],
        "head_dim": cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"],
        "tied_embeddings": cfg["tie_word_embeddings"],
        "tokenizer": {
            "model": vocab["model"],
            "pre": vocab["pre"],
            "bos": vocab["bos"],
            "eos": vocab["eos"],
            "add_bos": vocab["add_bos"],
        },
        "prompts": [
            {
                "name": p["name"],
                "ids": p["ids"],
                **({"text": p["text"]} if "text" in p else {}),
                "logits": {
                    "file": p["logits"],
                    "dtype": "f32le",
                    "shape": [len(p["ids"]), cfg["vocab_size"]],
                },
            }
            for p in prompts
        ],
        "hidden_states": {
            "prompt": HIDDEN_PROMPT,
            "file": "hidden.bin",
            "dtype": "f32le",
            "shape": list(hidden.shape),
            "layout": "[0] decoder input (embeddings, incl. gemma's sqrt(n_embd) scale); "
            "[i] residual stream after layer i-1; [n_layer+1] output of the final norm",
        },
        "greedy": {
            "prompt": GREEDY_PROMPT,
            "n_predict": N_GREEDY,
            "ids": greedy_ids,
            "min_top2_margin": round(margin, 6),
            "note": "argmax at each step, no EOS stop, no sampling",
        },
        "hf_config": {k: v for k, v in cfg.items()},
        "reference": {
            "transformers": transformers.__version__,
            "torch": torch.__version__.split("+")[0],
            "gguf": importlib.metadata.version("gguf"),
            "dtype": "float32",
            "attn_implementation": "eager",
            "weights": (
                "as stored in model.gguf, dequantized"
                if spec.file_type != "F32"
                else "the HF model's float32 weights (model.gguf holds them exactly)"
            ),
        },
        "checks": round_floats(checks),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    if not quiet:
        print_summary(spec, manifest, out)
    return manifest


def round_floats(x):
    if isinstance(x, float):
        return float(f"{x:.3g}")
    if isinstance(x, dict):
        return {k: round_floats(v) for k, v in x.items()}
    return x


def print_summary(spec: Spec, m: dict, out: Path) -> None:
    c = m["checks"]
    tg = c["transformers_gguf"]

    def fmt(r):
        return r.get("error") or f"max_abs {r['max_abs_diff']:.2e}"

    print(
        f"{spec.name:16s} {m['file_type']:5s} {(out / 'model.gguf').stat().st_size:7d} B  "
        f"fp64 rel {c['fp64']['max_rel_diff']:.1e}  "
        f"q8-act rel {c['q8_0_activations']['max_rel_diff']:.1e}  "
        f"HF-gguf-config: {fmt(tg['gguf_config'])}  "
        + (f"patched: {fmt(tg['gguf_config_patched'])}  " if "gguf_config_patched" in tg else "")
        + f"HF-our-config: {fmt(tg['our_config'])}  "
        f"greedy {m['greedy']['ids'][:6]}... margin {m['greedy']['min_top2_margin']}  "
        f"generate()==loop {c['greedy_matches_hf_generate']}"
    )


def check_manifest(m: dict) -> list[str]:
    """Hard failures: round trips that must hold."""
    errors = []
    c = m["checks"]
    ours = c["transformers_gguf"]["our_config"]
    if "error" in ours or ours["max_abs_diff"] > 1e-4:
        errors.append(f"{m['name']}: transformers (our config) disagrees: {ours}")
    tg = c["transformers_gguf"]
    hf = tg.get("gguf_config_patched", tg["gguf_config"])
    if "error" in hf or hf["max_abs_diff"] > 1e-4:
        errors.append(f"{m['name']}: transformers (its config) disagrees: {hf}")
    if not c["greedy_matches_hf_generate"]:
        errors.append(f"{m['name']}: greedy loop and HF generate() differ")
    return errors


def write_index(out_root: Path, manifests: list[dict]) -> None:
    index = {
        "generator": "scripts/gen_tiny_models.py",
        "doc": "docs/ORACLES.md",
        "models": [
            {"name": m["name"], "arch": m["arch"], "file_type": m["file_type"]} for m in manifests
        ],
    }
    (out_root / "index.json").write_text(json.dumps(index, indent=1) + "\n")


# Expected max relative logit error of llama.cpp (CPU) against these references: its F32 matmuls
# accumulate in fp32; its GELU reads an fp16 table (GGML_GELU_FP16); F16 weights make it round the
# activations to F16; Q8_0 weights make it quantize the activations to Q8_0 blocks.
LLAMA_CPP_TOL = {"F32": 1e-5, "F32-gemma3": 2e-3, "F16": 5e-3, "Q8_0": 0.1}


def llama_cpp_check(root: Path) -> int:
    """--llama-cpp: run every fixture through llama.cpp (llama-cpp-python, F32 KV cache) and compare
    its logits at every position, its greedy continuation and its tokenization of the text prompt.
    """
    from llama_cpp import Llama

    bad = 0
    for name in [m["name"] for m in json.loads((root / "index.json").read_text())["models"]]:
        m = json.loads((root / name / "manifest.json").read_text())
        llm = Llama(
            model_path=str(root / name / m["gguf"]),
            n_ctx=256,
            n_batch=256,
            logits_all=True,
            n_threads=os.cpu_count() or 1,
            verbose=False,
            type_k=0,
            type_v=0,
            flash_attn=False,
        )
        worst, top1 = 0.0, 1.0
        for p in m["prompts"]:
            ref = np.fromfile(root / name / p["logits"]["file"], "<f4").reshape(
                p["logits"]["shape"]
            )
            llm.reset()
            llm.eval(p["ids"])
            got = np.array(llm.scores[: len(p["ids"])], dtype=np.float32)
            worst = max(worst, float(np.abs(got - ref).max() / np.abs(ref).max()))
            top1 = min(top1, float(np.mean(got.argmax(-1) == ref.argmax(-1))))
        llm.reset()
        llm.eval(m["prompts"][m["greedy"]["prompt"]]["ids"])
        greedy = []
        for _ in range(m["greedy"]["n_predict"]):
            greedy.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
            llm.eval([greedy[-1]])
        text = m["prompts"][1]
        toks = llm.tokenize(text["text"].encode(), add_bos=m["tokenizer"]["add_bos"], special=False)
        tol = LLAMA_CPP_TOL["F32-gemma3" if m["arch"] == "gemma3" else m["file_type"]]
        ok = (
            worst <= tol
            and toks == text["ids"]
            and (m["file_type"] == "Q8_0" or greedy == m["greedy"]["ids"])
        )
        bad += not ok
        print(
            f"llama.cpp {name:16s} max rel {worst:.2e} (tol {tol:g})  top-1 {top1:.3f}  "
            f"greedy {'same' if greedy == m['greedy']['ids'] else 'differs'}  "
            f"tokenizer {'same' if toks == text['ids'] else f'differs: {toks}'}  "
            f"{'OK' if ok else 'FAIL'}"
        )
        del llm
    return 1 if bad else 0


def compare_dirs(new: Path, old: Path) -> int:
    """--check: GGUFs must be byte-identical; reference floats equal to 1e-6 of max |logit|."""
    bad = 0
    for f in sorted(new.rglob("*")):
        if f.is_dir():
            continue
        rel = f.relative_to(new)
        g = old / rel
        if not g.exists():
            print(f"missing in {old}: {rel}")
            bad += 1
        elif f.suffix == ".bin":
            a, b = np.fromfile(f, "<f4"), np.fromfile(g, "<f4")
            if a.shape != b.shape or np.abs(a - b).max() > 1e-6 * max(1.0, np.abs(b).max()):
                print(f"differs: {rel}")
                bad += 1
        elif f.suffix == ".json":
            a, b = json.loads(f.read_text()), json.loads(g.read_text())
            a.pop("checks", None), b.pop("checks", None)
            if a != b:
                print(f"differs: {rel}")
                bad += 1
        elif f.read_bytes() != g.read_bytes():
            print(f"differs: {rel}")
            bad += 1
    print("check:", "OK" if bad == 0 else f"{bad} differences")
    return 1 if bad else 0


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument(
        "--only",
        action="append",
        help="fixture name (repeatable); F16/Q8_0 copies pull in their base",
    )
    ap.add_argument(
        "--check", action="store_true", help="regenerate into a temp dir and compare with --out"
    )
    ap.add_argument(
        "--llama-cpp", action="store_true", help="only compare --out's fixtures with llama.cpp"
    )
    args = ap.parse_args()
    if args.llama_cpp:
        return llama_cpp_check(args.out)

    os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF loader shows progress bars
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(1)
    import transformers

    transformers.logging.set_verbosity_error()

    specs = SPECS
    if args.only:
        wanted = set(args.only)
        wanted |= {s.weights_from for s in SPECS if s.name in wanted and s.weights_from}
        specs = [s for s in SPECS if s.name in wanted]
    target = Path(tempfile.mkdtemp(prefix="tiny-models-")) if args.check else args.out
    target.mkdir(parents=True, exist_ok=True)
    models: dict = {}
    manifests, errors = [], []
    for spec in specs:
        m = generate(spec, target, models)
        manifests.append(m)
        errors += check_manifest(m)
    if not args.only:
        write_index(target, manifests)
    total = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
    print(f"wrote {target}: {total / 1e6:.2f} MB")
    for e in errors:
        print("ERROR:", e, file=sys.stderr)
    if args.check:
        rc = compare_dirs(target, args.out)
        shutil.rmtree(target)
        return rc or (1 if errors else 0)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
