#!/usr/bin/env python3
"""Reference logits for a real GGUF model, from transformers loading that GGUF in float32.

transformers dequantizes every tensor of the file (gguf-py's numpy dequantizers), so the
reference is the quantized model itself computed in float32, which is what an engine that
dequantizes exactly should reproduce. docs/ORACLES.md gives the tolerances.

Reference mode:
    ref_logits.py --model PATH (--prompt TEXT | --prompt-file F | --ids 1,2,3) [--chat]
                  [--n-predict N] [--ignore-eos] [--all-positions] --out DIR
  writes
    DIR/logits.bin          last position's logits, float32 little-endian, n_vocab values
    DIR/logits_all.bin      with --all-positions: [n_tokens, n_vocab] float32 little-endian
    DIR/ids.json            the prompt ids fed to the model (and how they were made), n_vocab,
                            the top-10 of the last position
    DIR/continuation.json   greedy continuation: ids, text, per-step top-1/top-2 margin
Compare mode:
    ref_logits.py --compare OURS.bin --out DIR [--tol REL] [--json]
  compares OURS.bin (same format: n_vocab floats, or [n_tokens, n_vocab]) with DIR/logits.bin or
  DIR/logits_all.bin (whichever has OURS.bin's size) and prints max abs error, max relative error
  (relative to max |reference logit|), RMS error, top-1 and top-5 agreement. With --tol, exits 1
  when the max relative error exceeds it.

Tokenization: transformers' tokenizer built from the GGUF, with two fixes that make it equal to
the models' original tokenizer.json (found by scripts/gen_tokenizer_golden.py): an NFC normalizer
for pre-tokenizer "qwen2", individual digits for "smollm". --no-tokenizer-fixes turns them off.
Text prompts get the BOS the GGUF asks for (tokenizer.ggml.add_bos_token); --chat renders the
GGUF's chat template around the prompt as one user message and adds no further BOS. --ids feeds
the ids as given (nothing added).

Needs the oracle venv (requirements-oracle.txt).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF loader shows progress bars


def parse_ids(s: str) -> list[int]:
    return [int(x) for x in s.replace(" ", "").split(",") if x]


def gguf_meta(path: Path) -> dict:
    import gguf

    r = gguf.GGUFReader(str(path))

    def get(key):
        f = r.fields.get(key)
        return None if f is None else f.contents()

    return {
        "arch": get("general.architecture"),
        "name": get("general.name"),
        "pre": get("tokenizer.ggml.pre"),
        "add_bos": bool(get("tokenizer.ggml.add_bos_token") or False),
        "bos": get("tokenizer.ggml.bos_token_id"),
        "eos": get("tokenizer.ggml.eos_token_id"),
        "chat_template": get("tokenizer.chat_template"),
        "n_vocab": len(r.fields["tokenizer.ggml.tokens"].data),
    }


def load_tokenizer(path: Path, meta: dict, fixes: bool):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    applied = []
    if fixes:
        from tokenizers import normalizers, pre_tokenizers

        backend = tok.backend_tokenizer
        if meta["pre"] == "qwen2":
            backend.normalizer = normalizers.NFC()
            applied.append("NFC normalizer (Qwen2 tokenizer.json has it)")
        elif meta["pre"] == "smollm":
            backend.pre_tokenizer = pre_tokenizers.Sequence(
                [
                    pre_tokenizers.Digits(individual_digits=True),
                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
                ]
            )
            applied.append("individual digits (SmolLM2 tokenizer.json has them)")
    return tok, applied


def prompt_ids(args, tok, meta: dict) -> tuple[list[int], dict]:
    if args.ids:
        return parse_ids(args.ids), {"source": "--ids", "bos_added": False}
    text = (
        args.prompt
        if args.prompt is not None
        else Path(args.prompt_file).read_text(encoding="utf-8")
    )
    info = {"source": "--prompt-file" if args.prompt is None else "--prompt", "text": text}
    if args.chat:
        rendered = tok.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
        )
        info.update(chat=True, rendered=rendered, bos_added=False)
        return tok(rendered, add_special_tokens=False)["input_ids"], info
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if meta["add_bos"]:
        ids = [meta["bos"]] + ids
    info.update(chat=False, bos_added=meta["add_bos"])
    return ids, info


def load_model(path: Path):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        str(path.parent), gguf_file=path.name, dtype=torch.float32, attn_implementation="eager"
    ).eval()


def greedy(
    model, ids: list[int], n: int, eos: int | None, ignore_eos: bool
) -> tuple[list[dict], float]:
    """Greedy decoding with the KV cache, one token at a time."""
    import torch
    from transformers import DynamicCache

    steps = []
    t0 = time.time()
    with torch.no_grad():
        cache = DynamicCache(config=model.config)
        out = model(torch.tensor([ids]), past_key_values=cache, use_cache=True)
        for _ in range(n):
            last = out.logits[0, -1].float().numpy()
            order = np.argsort(last)[::-1][:2]
            nxt = int(order[0])
            steps.append(
                {
                    "id": nxt,
                    "logit": float(last[order[0]]),
                    "margin": float(last[order[0]] - last[order[1]]),
                }
            )
            if nxt == eos and not ignore_eos:
                break
            out = model(torch.tensor([[nxt]]), past_key_values=out.past_key_values, use_cache=True)
    return steps, time.time() - t0


def dump_json(obj) -> str:
    """Indented JSON with lists of ids kept on one line."""
    text = json.dumps(obj, indent=1, ensure_ascii=False)
    return (
        re.sub(
            r"\[\n\s*(-?\d+(?:,\n\s*-?\d+)*)\n\s*\]",
            lambda m: "[" + re.sub(r",\n\s*", ", ", m[1]) + "]",
            text,
        )
        + "\n"
    )


def write_f32(path: Path, arr: np.ndarray) -> None:
    np.ascontiguousarray(arr, dtype="<f4").tofile(path)


def reference(args) -> int:
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(os.cpu_count() or 1)
    path = Path(args.model).expanduser().resolve()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = gguf_meta(path)
    if args.chat and not meta["chat_template"]:
        sys.exit(f"ref_logits: error: {path.name} has no chat template (tokenizer.chat_template)")
    t0 = time.time()
    tok, fixes = load_tokenizer(path, meta, not args.no_tokenizer_fixes)
    ids, info = prompt_ids(args, tok, meta)
    t_tok = time.time() - t0
    t0 = time.time()
    model = load_model(path)
    t_load = time.time() - t0
    n_vocab = model.config.vocab_size
    t0 = time.time()
    with torch.no_grad():
        logits = model(torch.tensor([ids]), use_cache=False).logits[0].float().numpy()
    t_prefill = time.time() - t0
    if logits.shape != (len(ids), n_vocab):
        raise AssertionError(f"logits shape {logits.shape}, expected {(len(ids), n_vocab)}")
    write_f32(out / "logits.bin", logits[-1])
    if args.all_positions:
        write_f32(out / "logits_all.bin", logits)
    last = logits[-1]
    top = np.argsort(last)[::-1][:10]
    ids_json = {
        "model": str(path),
        "general.name": meta["name"],
        "arch": meta["arch"],
        **info,
        "ids": ids,
        "n_tokens": len(ids),
        "n_vocab": n_vocab,
        "tokenizer": "transformers from the GGUF" + (" + " + "; ".join(fixes) if fixes else ""),
        "top10_last": [
            {"id": int(i), "logit": float(last[i]), "piece": tok.convert_ids_to_tokens(int(i))}
            for i in top
        ],
        "files": {
            "logits.bin": f"f32le [{n_vocab}] (last position)",
            **({"logits_all.bin": f"f32le [{len(ids)}, {n_vocab}]"} if args.all_positions else {}),
        },
        "reference": {
            "transformers": transformers.__version__,
            "torch": torch.__version__.split("+")[0],
            "dtype": "float32 (weights dequantized from the GGUF)",
            "attn_implementation": "eager",
        },
    }
    (out / "ids.json").write_text(dump_json(ids_json))
    steps, t_gen = greedy(model, ids, args.n_predict, meta["eos"], args.ignore_eos)
    gen_ids = [s["id"] for s in steps]
    cont = {
        "n_predict": args.n_predict,
        "ignore_eos": args.ignore_eos,
        "stopped_at_eos": bool(gen_ids) and gen_ids[-1] == meta["eos"] and not args.ignore_eos,
        "ids": gen_ids,
        "text": tok.decode(gen_ids, skip_special_tokens=False),
        "min_top2_margin": min((s["margin"] for s in steps), default=None),
        "steps": steps,
        "note": "argmax each step with the KV cache; the prompt is ids.json's ids",
    }
    (out / "continuation.json").write_text(dump_json(cont))
    print(f"model      {path.name} ({meta['arch']}, '{meta['name']}'), n_vocab {n_vocab}")
    if fixes:
        print(f"tokenizer  fixes: {'; '.join(fixes)}")
    print(f"prompt     {len(ids)} tokens: {ids[:16]}{' ...' if len(ids) > 16 else ''}")
    print(f"top-5      {[(int(i), round(float(last[i]), 3)) for i in top[:5]]}")
    print(f"greedy     {gen_ids}")
    print(f"           {cont['text']!r}")
    print(
        f"timing     tokenizer {t_tok:.1f}s, load+dequant {t_load:.1f}s, prefill {t_prefill:.2f}s, "
        f"{len(gen_ids)} greedy tokens {t_gen:.1f}s ({t_gen / max(1, len(gen_ids)):.2f} s/token), "
        f"{torch.get_num_threads()} threads"
    )
    print(
        f"wrote      {out}/logits.bin{', logits_all.bin' if args.all_positions else ''}, "
        "ids.json, continuation.json"
    )
    return 0


def compare_arrays(ours: np.ndarray, ref: np.ndarray) -> dict:
    diff = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
    scale = float(np.abs(ref).max())
    row_rel = diff.max(-1) / np.abs(ref).max(-1)
    top1 = np.argmax(ours, -1) == np.argmax(ref, -1)
    o5 = np.argsort(-ours, -1)[:, :5]
    r5 = np.argsort(-ref, -1)[:, :5]
    same5 = [set(a) == set(b) for a, b in zip(o5, r5)]
    ref1_in_our5 = [int(np.argmax(r)) in set(a) for r, a in zip(ref, o5)]
    return {
        "rows": int(ref.shape[0]),
        "n_vocab": int(ref.shape[1]),
        "max_abs_err": float(diff.max()),
        "max_rel_err": float(diff.max() / scale) if scale else float("inf"),
        "rms_err": float(np.sqrt(np.mean(diff**2))),
        "rms_rel_err": float(
            np.sqrt(np.mean(diff**2)) / np.sqrt(np.mean(ref.astype(np.float64) ** 2))
        ),
        "max_abs_ref": scale,
        "worst_row": int(np.argmax(row_rel)),
        "worst_row_rel_err": float(row_rel.max()),
        # Qwen's first position carries huge outlier activations; quantized paths miss it most
        "max_row_rel_err_after_row0": float(row_rel[1:].max()) if len(row_rel) > 1 else None,
        "top1_agree": float(np.mean(top1)),
        "top5_set_agree": float(np.mean(same5)),
        "ref_top1_in_our_top5": float(np.mean(ref1_in_our5)),
    }


def compare(args) -> int:
    out = Path(args.out)
    if not Path(args.compare).is_file():
        sys.exit(f"ref_logits: error: no such file: {args.compare}")
    ours = np.fromfile(args.compare, dtype="<f4")
    n_vocab = None
    if (out / "ids.json").exists():
        n_vocab = json.loads((out / "ids.json").read_text())["n_vocab"]
    ref = None
    for name in ("logits.bin", "logits_all.bin"):
        f = out / name
        if f.exists() and f.stat().st_size == ours.nbytes:
            ref, ref_name = np.fromfile(f, dtype="<f4"), name
            break
    if ref is None:
        sys.exit(
            f"ref_logits: error: no reference in {out} has the size of {args.compare} "
            f"({ours.size} floats)"
        )
    n_vocab = n_vocab or ref.size
    if ref.size % n_vocab:
        sys.exit(f"ref_logits: error: {ref.size} floats is not a multiple of n_vocab {n_vocab}")
    r = compare_arrays(ours.reshape(-1, n_vocab), ref.reshape(-1, n_vocab))
    r["reference"] = str(out / ref_name)
    if args.json:
        print(json.dumps(r, indent=1))
    else:
        print(f"compare    {args.compare} vs {r['reference']}: {r['rows']} x {r['n_vocab']}")
        print(f"max abs    {r['max_abs_err']:.3e}   (max |ref| {r['max_abs_ref']:.3f})")
        print(f"max rel    {r['max_rel_err']:.3e}   (max abs err / max |ref|)")
        print(f"rms        {r['rms_err']:.3e}   (rel to rms(ref): {r['rms_rel_err']:.3e})")
        if r["rows"] > 1:
            print(
                f"per row    worst row {r['worst_row']} "
                f"({r['worst_row_rel_err']:.3e} of its max |ref|); "
                f"rows 1..: {r['max_row_rel_err_after_row0']:.3e}"
            )
        print(f"top-1      {r['top1_agree'] * 100:.1f}% rows agree")
        print(
            f"top-5      {r['top5_set_agree'] * 100:.1f}% rows same set; ref top-1 in our top-5 "
            f"{r['ref_top1_in_our_top5'] * 100:.1f}%"
        )
    if args.tol is not None and r["max_rel_err"] > args.tol:
        print(f"FAIL: max rel {r['max_rel_err']:.3e} > tol {args.tol:g}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", help="GGUF file")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--prompt", help="prompt text")
    src.add_argument("--prompt-file", help="file holding the prompt text (UTF-8)")
    src.add_argument("--ids", help="comma-separated token ids, fed as given")
    ap.add_argument(
        "--chat", action="store_true", help="wrap the prompt in the GGUF's chat template"
    )
    ap.add_argument(
        "--n-predict", type=int, default=16, help="greedy tokens to generate (default 16)"
    )
    ap.add_argument("--ignore-eos", action="store_true", help="keep generating past EOS")
    ap.add_argument("--all-positions", action="store_true", help="also write logits_all.bin")
    ap.add_argument(
        "--no-tokenizer-fixes", action="store_true", help="transformers' GGUF tokenizer as is"
    )
    ap.add_argument("--out", required=True, help="output directory (compare mode: the reference's)")
    ap.add_argument(
        "--compare", metavar="OURS.bin", help="compare this logits file with --out's reference"
    )
    ap.add_argument("--tol", type=float, help="compare mode: fail if max rel error exceeds this")
    ap.add_argument("--json", action="store_true", help="compare mode: print the metrics as JSON")
    args = ap.parse_args()
    if args.compare:
        return compare(args)
    if not args.model or (args.prompt is None and args.prompt_file is None and args.ids is None):
        ap.error("reference mode needs --model and one of --prompt, --prompt-file, --ids")
    if args.chat and args.ids:
        ap.error("--chat needs text, not --ids")
    return reference(args)


if __name__ == "__main__":
    sys.exit(main())
