#!/usr/bin/env python3
"""Writes the tokenizer goldens of tests/tokenizer/tokenizer_test.cpp to tests/data/tokenizer/.

For each real model (docs/MODELS.md) it writes
  <model>.inp   JSON lines {"text": str, "add_special": bool, "parse_special": bool}
  <model>.out   JSON lines {"ids": [int, ...]}, line i answers line i of <model>.inp
The ids are the model's ORIGINAL tokenizer (ground truth), rebuilt from the GGUF's vocabulary:
  qwen2.5-coder-0.5b  tokenizers: BPE + NFC normalizer + Qwen2 split regex + ByteLevel
                      (= Qwen2.5's tokenizer.json; transformers' GGUF conversion drops the NFC)
  smollm2-135m        tokenizers: BPE + Digits(individual) + ByteLevel(use_regex)
                      (= SmolLM2's tokenizer.json; transformers' GGUF conversion drops Digits)
  gemma3-270m         sentencepiece: a ModelProto rebuilt from the GGUF (BPE, byte fallback,
                      identity normalizer, no dummy prefix, user-defined whitespace pieces spelled
                      with U+2581 again), which is what Gemma's tokenizer.model is; control tokens
                      are split out first when parse_special, as HF does.
It also runs transformers' own GGUF conversion (AutoTokenizer.from_pretrained(dir, gguf_file=..))
on every case and prints where it differs from the ground truth (the report in README.md there).

parse_special=false means: control tokens (GGUF token_type 3) are plain text, user-defined ones
(type 4, HF's non-special added tokens) are still matched, as HF does with split_special_tokens.

Regenerate (needs the oracle venv and the three models pulled with `build/sift models pull NAME`):
  python3 -m venv /tmp/ovenv && /tmp/ovenv/bin/pip install -r requirements-oracle.txt
  /tmp/ovenv/bin/python scripts/gen_tokenizer_golden.py [--models-dir DIR]
Loading the three tokenizers with transformers takes about a minute. torch is not needed: the
transformers GGUF reader imports it only for tensors, so a stub stands in for it when absent.

  /tmp/ovenv/bin/python scripts/gen_tokenizer_golden.py --nfc-table
rewrites src/tokenizer/unicode_nfc_table.cpp (canonical decompositions, combining classes and
compositions for NFC) from Python's unicodedata.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import types
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "tests" / "data" / "tokenizer"
NFC_TABLE = ROOT / "src" / "tokenizer" / "unicode_nfc_table.cpp"

MODELS = {
    "qwen2.5-coder-0.5b": "qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf",
    "smollm2-135m": "smollm2-135m-instruct-q4_1.gguf",
    "gemma3-270m": "gemma-3-270m-q4_k_m.gguf",
}

GPL = Path("/usr/share/common-licenses/GPL-3")
C_HEADER = Path("/usr/include/stdio.h")


# ---------------------------------------------------------------------------------------------
# Corpus


def corpus() -> list[tuple[str, bool, bool]]:
    """(text, add_special, parse_special) cases; deterministic."""
    short = [
        "",
        " ",
        "   ",
        "\t",
        "\n",
        " \t \n ",
        "\n\n\n",
        "\r\n",
        "Hello world",
        " Hello world",
        "Hello  world   again    and\tagain",
        "The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX!",
        "I'm sure he's right, they'LL see; WE'RE done. Don't, won't, it'S, 's, 'd've",
        "'s 'S 'll 'LL 've 'VE 're 'RE 'm 'M 'd 'D 't 'T",
        "x\u017fy '\u017f \u212a",  # long s and Kelvin sign fold case-insensitively to s and k
        "1234567890123456789012345678901234567890",
        "pi is 3.14159265358979, e is 2.718281828, 1,000,000 and 10^9 = 1000000000",
        " 42 a1b2c3 x123y 0x7fff_ffff 1e-10",
        "\u00bd cup, x\u00b2 + y\u00b2 = z\u00b2, \u2164 \u216b, \u2460\u2461\u2462, 10\u00b3",
        " \u0661\u0662\u0663 \u0967\u0968 \uff11\uff12\uff13",  # Arabic-Indic, Devanagari, fullwidth
        "\u4f60\u597d\uff0c\u4e16\u754c\uff01\u8fd9\u662f\u4e00\u4e2a\u6d4b\u8bd5\u3002",
        "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3068\u30ab\u30bf\u30ab\u30ca",
        "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8\uc785\ub2c8\ub2e4",
        "\u1100\u1161\u11a8 \u1112\u1161\u11ab",  # conjoining jamo: NFC composes them
        "\U0001f600\U0001f44d\U0001f3fd family: \U0001f468\u200d\U0001f469\u200d\U0001f467",
        "\U0001d518\U0001d52b\U0001d526\U0001d520\U0001d52c\U0001d521\U0001d522 \U00020b9f\U00020c3a",
        "e\u0301 n\u0303 a\u0308\u0304 o\u0328\u0301 caf\u00e9 cafe\u0301 \u212b \u2126",
        "Z\u0351\u036b\u0343\u036a\u0302\u036b\u033d\u034f\u0334\u0319\u0324a\u0360\u0349lgo",
        "Vi\u1ec7t Nam, ti\u1ebfng Vi\u00ea\u0323t, Tie\u0302\u0301ng",
        "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645 123",
        "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd! \u05e2\u05b4\u05d1\u05b0\u05e8\u05b4\u05d9\u05ea",
        "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e",
        "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e0a\u0e32\u0e27\u0e42\u0e25\u0e01",
        "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440! \u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5",
        "a\r\nb\rc\n\nd\r\r\n\ne",
        "line one\n  line two\n\tline three\n\n\n    line four  \n",
        "a\u00a0b\u3000c\u2009d\u200be\ufefff\u2028g",
        # White_Space per Unicode (HF's regex engine): U+0085 and U+000B are, U+180E and U+001C not.
        "a \u180eb \x85c \x1cd\x0b e\u180e\u180e 1\t\t2",
        "ctrl \x00\x01\x07\x1b[0m\x7f end",
        "\u2581 literal lower one eighth block, \u0120 literal G-dot, \ufffd replacement",
        "private \ue000\U000f0000 noncharacter \ufdd0",
        "<table><tr><td>1</td></tr></table> <b>bold</b> <code>x</code>",
        "def f(x):\n    return x  # comment\n\tif x:\n\t\tpass\n",
        "int main(void) {\n    printf(\"%d\\n\", 42);\n    return 0;\n}\n",
        "    indented by four\n        and eight\n" + " " * 40 + "forty",
        "   leading spaces and trailing   ",
        "wow!!! ... ??? --- *** ### $$$ %%% &&& @@@",
        "https://example.com/path?query=1&x=y#frag user@example.org",
        '{"key": [1, 2, 3], "nested": {"a": null, "b": true}}',
        "\u2581\u2581 two U+2581 then  two spaces",
    ]
    special = [
        "<|im_start|>user\nhi<|im_end|>",
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start",
        "<|im_start|><|im_end|><|endoftext|>",
        "x<|im_end|>y",
        "<|im_start|",
        "<tool_call>\n{\"name\": \"f\"}\n</tool_call>",
        "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
        "<start_of_turn>user\nhello<end_of_turn>\n<start_of_turn>model\n",
        "<start_of_turn",
        "<bos>",
        "<bos>hi<eos>",
        "<pad><unk><mask>",
        "<repo_name>sift<file_sep>main.cpp",
        "<unused0> <unused12>",
        "text <|endoftext|> more text",
    ]
    cases: list[tuple[str, bool, bool]] = []
    for text in short:
        cases.append((text, False, True))
    for text in short[:12] + short[-6:]:
        cases.append((text, True, True))
    for text in special:
        for add_special in (False, True):
            for parse_special in (True, False):
                cases.append((text, add_special, parse_special))

    # Long words and runs, from a fixed seed (kept short enough for the goldens to stay small).
    rng = random.Random(1234)
    alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
    cases.append(("a" * 5000, False, True))
    cases.append(("".join(rng.choice(alnum) for _ in range(1500)), False, True))
    cases.append(("ab" * 400 + " " + "\u00e9" * 200, False, True))
    cases.append(("7" * 300 + "1234567890" * 30, False, True))
    cases.append((" " * 300 + "x" + "\n" * 100 + "\t" * 50, False, True))
    cases.append(("\u4e2d\u6587" * 200, False, True))
    cases.append(("\U0001f600" * 100 + "\u0301" * 30, False, True))

    # Real prose and code, in chunks of 8 lines.
    for path, first, count in ((GPL, 0, 152), (C_HEADER, 0, 120)):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)[first : first + count]
        for i in range(0, len(lines), 8):
            cases.append(("".join(lines[i : i + 8]), False, True))
    return cases


# ---------------------------------------------------------------------------------------------
# GGUF vocabulary


def read_vocab(path: str) -> dict:
    from gguf import GGUFReader

    fields = GGUFReader(path).fields

    def strings(key):
        f = fields.get(key)
        return None if f is None else [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    def numbers(key, cast):
        f = fields.get(key)
        return None if f is None else [cast(f.parts[i][0]) for i in f.data]

    def scalar(key, cast):
        f = fields.get(key)
        return None if f is None else cast(f.parts[f.data[0]][0])

    return {
        "model": bytes(fields["tokenizer.ggml.model"].parts[-1]).decode(),
        "tokens": strings("tokenizer.ggml.tokens"),
        "types": numbers("tokenizer.ggml.token_type", int),
        "scores": numbers("tokenizer.ggml.scores", float),
        "merges": strings("tokenizer.ggml.merges"),
        "bos": scalar("tokenizer.ggml.bos_token_id", int),
        "eos": scalar("tokenizer.ggml.eos_token_id", int),
        "unk": scalar("tokenizer.ggml.unknown_token_id", int),
        "pad": scalar("tokenizer.ggml.padding_token_id", int),
        "add_bos": scalar("tokenizer.ggml.add_bos_token", bool) or False,
        "add_eos": scalar("tokenizer.ggml.add_eos_token", bool) or False,
    }


# ---------------------------------------------------------------------------------------------
# transformers' GGUF conversion


def load_transformers_gguf(models_dir: str, file_name: str):
    import transformers
    from transformers import AutoTokenizer

    try:
        import torch  # noqa: F401
    except ImportError:
        # The GGUF reader imports torch at module level for tensor dtypes only; tokenizers need
        # none of it. Stand in for it, and let the config loader past its torch check.
        stub = types.ModuleType("torch")
        stub.__getattr__ = lambda name: type(name, (), {})
        sys.modules["torch"] = stub
        sys.modules["torch.nn"] = stub
        import transformers.modeling_gguf_pytorch_utils as gguf_utils

        gguf_utils.is_torch_available = lambda: True
    transformers.logging.set_verbosity_error()
    return AutoTokenizer.from_pretrained(models_dir, gguf_file=file_name)


def hf_encode(backend, text: str, add_special: bool, parse_special: bool) -> list[int]:
    # tokenizers' encode_special_tokens: special added tokens stay text, others still match.
    backend.encode_special_tokens = not parse_special
    try:
        return backend.encode(text, add_special_tokens=add_special).ids
    finally:
        backend.encode_special_tokens = False


# ---------------------------------------------------------------------------------------------
# Ground truth: each model's original tokenizer


class HfOriginal:
    """A copy of transformers' conversion with the original pipeline pieces put back."""

    def __init__(self, backend, normalizer=None, pre_tokenizer=None):
        from tokenizers import Tokenizer

        self.backend = Tokenizer.from_str(backend.to_str())
        if normalizer is not None:
            self.backend.normalizer = normalizer
        if pre_tokenizer is not None:
            self.backend.pre_tokenizer = pre_tokenizer

    def encode(self, text, add_special, parse_special):
        return hf_encode(self.backend, text, add_special, parse_special)


class SpmOriginal:
    """Gemma's tokenizer.model rebuilt from the GGUF, run by sentencepiece itself."""

    def __init__(self, vocab: dict):
        import sentencepiece as spm
        from sentencepiece import sentencepiece_model_pb2 as pb

        proto = pb.ModelProto()
        proto.trainer_spec.model_type = pb.TrainerSpec.BPE
        proto.trainer_spec.vocab_size = len(vocab["tokens"])
        proto.trainer_spec.byte_fallback = True
        proto.trainer_spec.unk_id = vocab["unk"]
        proto.trainer_spec.bos_id = vocab["bos"]
        proto.trainer_spec.eos_id = vocab["eos"]
        proto.trainer_spec.pad_id = vocab["pad"]
        proto.normalizer_spec.name = "identity"
        proto.normalizer_spec.add_dummy_prefix = False
        proto.normalizer_spec.remove_extra_whitespaces = False
        proto.normalizer_spec.escape_whitespaces = True
        for text, score, kind in zip(vocab["tokens"], vocab["scores"], vocab["types"]):
            if kind == 4:
                # llama.cpp's converter wrote user-defined pieces with real spaces ("  "); in
                # tokenizer.model they are "\u2581\u2581", matched after spaces are escaped.
                text = text.replace(" ", "\u2581")
            piece = proto.pieces.add()
            piece.piece, piece.score, piece.type = text, score, kind  # GGUF types are spm's
        self.sp = spm.SentencePieceProcessor(model_proto=proto.SerializeToString())
        self.vocab = vocab
        self.control = {}  # first character -> control tokens, longest first
        for t in sorted((t for t, k in zip(vocab["tokens"], vocab["types"]) if k == 3), key=len, reverse=True):
            self.control.setdefault(t[0], []).append(t)
        self.control_ids = {t: i for i, (t, k) in enumerate(zip(vocab["tokens"], vocab["types"])) if k == 3}

    def encode(self, text, add_special, parse_special):
        ids = [self.vocab["bos"]] if add_special and self.vocab["add_bos"] else []
        # HF splits added tokens leftmost-longest before normalizing; sentencepiece never
        # matches control pieces in text, so do that split here.
        pos, start = 0, 0
        while parse_special and pos < len(text):
            match = next((t for t in self.control.get(text[pos], ()) if text.startswith(t, pos)), None)
            if match is None:
                pos += 1
                continue
            if start < pos:
                ids += self.sp.encode(text[start:pos])
            ids.append(self.control_ids[match])
            pos += len(match)
            start = pos
        if start < len(text):
            ids += self.sp.encode(text[start:])
        if add_special and self.vocab["add_eos"]:
            ids.append(self.vocab["eos"])
        return ids


def original_tokenizer(name: str, backend, vocab: dict):
    from tokenizers import normalizers, pre_tokenizers

    if name.startswith("qwen"):
        return HfOriginal(backend, normalizer=normalizers.NFC())
    if name.startswith("smollm"):
        return HfOriginal(
            backend,
            pre_tokenizer=pre_tokenizers.Sequence(
                [
                    pre_tokenizers.Digits(individual_digits=True),
                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
                ]
            ),
        )
    if name.startswith("gemma"):
        return SpmOriginal(vocab)
    raise ValueError(name)


# ---------------------------------------------------------------------------------------------


def write_goldens(models_dir: str, only: list[str]) -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    cases = corpus()
    for name, file_name in MODELS.items():
        if only and name not in only:
            continue
        path = os.path.join(models_dir, file_name)
        if not os.path.isfile(path):
            sys.exit(f"missing {path}: run `build/sift models pull {name}`")
        vocab = read_vocab(path)
        hf = load_transformers_gguf(models_dir, file_name)
        truth = original_tokenizer(name, hf.backend_tokenizer, vocab)
        diffs = 0
        with open(OUT_DIR / f"{name}.inp", "w", encoding="utf-8") as inp, open(
            OUT_DIR / f"{name}.out", "w", encoding="utf-8"
        ) as out:
            for text, add_special, parse_special in cases:
                ids = truth.encode(text, add_special, parse_special)
                inp.write(
                    json.dumps(
                        {"text": text, "add_special": add_special, "parse_special": parse_special},
                        ensure_ascii=False,
                    )
                    + "\n"
                )
                out.write(json.dumps({"ids": ids}, separators=(",", ":")) + "\n")
                theirs = hf_encode(hf.backend_tokenizer, text, add_special, parse_special)
                if theirs != ids:
                    diffs += 1
                    if diffs <= 12:
                        show = text if len(text) < 80 else text[:77] + "..."
                        print(f"  {name}: transformers-GGUF differs on {show!r} "
                              f"(add_special={add_special}, parse_special={parse_special})")
                        print(f"    original     {ids[:24]}")
                        print(f"    transformers {theirs[:24]}")
        print(f"{name}: {len(cases)} cases, transformers-GGUF differs from the original on {diffs}")


# ---------------------------------------------------------------------------------------------
# NFC tables


def write_nfc_table() -> None:
    """Full canonical decompositions, non-zero combining classes, primary compositions."""
    decomp, ccc, compose = [], [], []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF or 0xAC00 <= cp <= 0xD7A3:  # surrogates; Hangul is algorithmic
            continue
        ch = chr(cp)
        cls = unicodedata.combining(ch)
        if cls:
            ccc.append((cp, cls))
        d = unicodedata.decomposition(ch)
        if d and not d.startswith("<"):
            full = unicodedata.normalize("NFD", ch)
            decomp.append((cp, [ord(c) for c in full]))
            parts = [int(x, 16) for x in d.split()]
            # A primary composite: its canonical pair composes back under NFC.
            if len(parts) == 2 and unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == ch:
                compose.append((parts[0], parts[1], cp))
    # Combining classes as runs [first, last, class].
    runs = []
    for cp, cls in ccc:
        if runs and runs[-1][1] == cp - 1 and runs[-1][2] == cls:
            runs[-1][1] = cp
        else:
            runs.append([cp, cp, cls])
    pool, offsets = [], []
    for cp, seq in decomp:
        offsets.append((cp, len(pool), len(seq)))
        pool.extend(seq)
    compose.sort()

    def rows(items, per_line):
        out = []
        for i in range(0, len(items), per_line):
            out.append("    " + " ".join(items[i : i + per_line]))
        return "\n".join(out)

    text = f"""// Generated by scripts/gen_tokenizer_golden.py --nfc-table from Python's unicodedata
// (Unicode {unicodedata.unidata_version}). Do not edit.
#include "tokenizer/unicode_nfc_table.h"

namespace sift::nfc {{

const CombiningRun kCombiningRuns[] = {{
{rows([f"{{0x{a:X}, 0x{b:X}, {c}}}," for a, b, c in runs], 4)}
}};
const size_t kCombiningRunCount = sizeof(kCombiningRuns) / sizeof(kCombiningRuns[0]);

const char32_t kDecompositionPool[] = {{
{rows([f"0x{c:X}," for c in pool], 10)}
}};

const Decomposition kDecompositions[] = {{
{rows([f"{{0x{cp:X}, {off}, {n}}}," for cp, off, n in offsets], 4)}
}};
const size_t kDecompositionCount = sizeof(kDecompositions) / sizeof(kDecompositions[0]);

const Composition kCompositions[] = {{
{rows([f"{{0x{a:X}, 0x{b:X}, 0x{c:X}}}," for a, b, c in compose], 3)}
}};
const size_t kCompositionCount = sizeof(kCompositions) / sizeof(kCompositions[0]);

}}  // namespace sift::nfc
"""
    NFC_TABLE.write_text(text, encoding="utf-8")
    print(f"wrote {NFC_TABLE}: {len(runs)} class runs, {len(offsets)} decompositions, "
          f"{len(compose)} compositions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_dir = os.environ.get("SIFT_MODELS", os.path.expanduser("~/.cache/sift/models"))
    parser.add_argument("--models-dir", default=default_dir)
    parser.add_argument("--model", action="append", default=[], choices=sorted(MODELS))
    parser.add_argument("--nfc-table", action="store_true", help="write the NFC table and exit")
    args = parser.parse_args()
    if args.nfc_table:
        write_nfc_table()
        return
    write_goldens(args.models_dir, args.model)


if __name__ == "__main__":
    main()
