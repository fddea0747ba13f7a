#!/usr/bin/env python3
"""Golden renders of chat templates for sift's Jinja engine (tests/data/templates/).

The oracle is transformers' own render_jinja_template (jinja2 in the sandboxed environment that
apply_chat_template builds: trim_blocks, lstrip_blocks, loopcontrols, its tojson, raise_exception,
strftime_now), after the message normalization apply_chat_template does first (keys whose value is
None are dropped). strftime_now reads a fixed clock so that Llama 3.x goldens do not depend on the
day they were made.

Inputs (committed):
  tests/data/templates/*.jinja               exact template copies (README.md lists the sources)
  tests/data/templates/templates.json        per template: file, special tokens, options to sweep
  tests/data/templates/conversations/*.json  conversations: {"messages": [...], "tools": [...]}
  tests/data/templates/jinja_features.json   small templates exercising one engine feature each
                                             ("sift_error": sift's wording where Python names internals)
Outputs:
  tests/data/templates/golden/<template>.json   one entry per (conversation, options): the text,
                                                or the error the template raises
  tests/data/templates/jinja_features.golden.json   the feature templates' text or error
  tests/data/templates/cli/                     the golden for the `sift template` CLI test,
                                                rendered from the installed model's own GGUF

With --extract, the templates stored in the installed GGUF models (~/.cache/sift/models or
$SIFT_MODELS) are first copied to tests/data/templates/.

Usage: /tmp/ovenv/bin/python scripts/gen_template_golden.py [--extract]
Pins: requirements-oracle.txt (jinja2, transformers).
"""

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "templates"

# The clock strftime_now() reads in goldens; tests pass the same time (2025-03-14 09:26:53).
FIXED_NOW = dt.datetime(2025, 3, 14, 9, 26, 53)

# Templates stored in the real models (`sift models pull ...`), copied by --extract.
GGUF_TEMPLATES = {
    "qwen2.5-coder-1.5b-instruct.jinja": "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    "qwen2.5-coder-0.5b-instruct-awq.jinja": "qwen2.5-coder-0.5b-instruct-awq-q4_k_m.gguf",
    "smollm2-135m-instruct.jinja": "smollm2-135m-instruct-q4_1.gguf",
}
CLI_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"


def models_dir() -> Path:
    env = os.environ.get("SIFT_MODELS")
    return Path(env) if env else Path.home() / ".cache" / "sift" / "models"


def gguf_metadata(path: Path) -> dict:
    """tokenizer.chat_template and the bos/eos token texts of a GGUF."""
    import gguf

    reader = gguf.GGUFReader(str(path))

    def field(key):
        f = reader.fields.get(key)
        return None if f is None else f.parts[f.data[0]]

    out = {}
    tmpl = field("tokenizer.chat_template")
    if tmpl is not None:
        out["chat_template"] = bytes(tmpl).decode("utf-8")
    tokens = reader.fields["tokenizer.ggml.tokens"]
    for which in ("bos", "eos"):
        tid = field(f"tokenizer.ggml.{which}_token_id")
        if tid is not None:
            part = tokens.parts[tokens.data[int(tid[0])]]
            out[f"{which}_token"] = bytes(part).decode("utf-8")
    return out


def setup_oracle():
    """transformers' renderer, with strftime_now() reading FIXED_NOW."""
    import transformers.utils.chat_template_utils as ctu

    class FixedClock(dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return FIXED_NOW

    ctu.datetime = FixedClock  # strftime_now() calls datetime.now()
    return ctu.render_jinja_template


def render(render_fn, template: str, conversation: dict, add_generation_prompt: bool, kwargs: dict):
    # apply_chat_template drops None-valued keys before rendering.
    messages = [{k: v for k, v in m.items() if v is not None} for m in conversation["messages"]]
    try:
        out, _ = render_fn(
            conversations=[messages],
            tools=conversation.get("tools"),
            chat_template=template,
            add_generation_prompt=add_generation_prompt,
            **kwargs,
        )
        return {"output": out[0]}
    except Exception as e:  # the template's raise_exception, or a Jinja error
        return {"error": str(e), "error_type": type(e).__name__}


def option_sets(spec: dict):
    """Every combination of add_generation_prompt and the template's extra options."""
    variants = spec.get("kwargs_variants", [{}])
    for agp in (False, True):
        for kw in variants:
            yield agp, kw


def extract_gguf_templates():
    mdir = models_dir()
    for name, model in GGUF_TEMPLATES.items():
        path = mdir / model
        if not path.exists():
            print(f"skip {name}: {path} missing (run `build/sift models pull ...`)")
            continue
        meta = gguf_metadata(path)
        (DATA / name).write_text(meta["chat_template"], encoding="utf-8", newline="")
        print(f"wrote {name} from {model}")


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


def generate_goldens(render_fn) -> int:
    specs = json.loads((DATA / "templates.json").read_text(encoding="utf-8"))
    conversations = {
        p.stem: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((DATA / "conversations").glob("*.json"))
    }
    (DATA / "golden").mkdir(exist_ok=True)
    total = 0
    for spec in specs["templates"]:
        template = (DATA / spec["file"]).read_text(encoding="utf-8")
        tokens = {k: v for k, v in spec.get("special_tokens", {}).items()}
        cases = []
        for conv_name, conv in conversations.items():
            for agp, kw in option_sets(spec):
                result = render(render_fn, template, conv, agp, {**tokens, **kw})
                cases.append(
                    {"conversation": conv_name, "add_generation_prompt": agp, "kwargs": kw, **result}
                )
        write_json(DATA / "golden" / (Path(spec["file"]).stem + ".json"), {
            "template": spec["file"],
            "special_tokens": tokens,
            "now": FIXED_NOW.isoformat(),
            "cases": cases,
        })
        n_err = sum("error" in c for c in cases)
        print(f"{spec['file']}: {len(cases)} cases ({n_err} raise)")
        total += len(cases)
    return total


def generate_feature_goldens() -> int:
    """Each feature template rendered in transformers' compiled environment with its context."""
    import transformers.utils.chat_template_utils as ctu

    features = json.loads((DATA / "jinja_features.json").read_text(encoding="utf-8"))
    cases = []
    for case in features["cases"]:
        try:
            out = ctu._compile_jinja_template(case["template"]).render(**case["context"])
            result = {"output": out}
        except Exception as e:
            result = {"error": str(e), "error_type": type(e).__name__}
        cases.append({"name": case["name"], **result})
    write_json(DATA / "jinja_features.golden.json", {"now": FIXED_NOW.isoformat(), "cases": cases})
    n_err = sum("error" in c for c in cases)
    print(f"jinja_features.golden.json: {len(cases)} cases ({n_err} raise)")
    return len(cases)


def generate_cli_golden(render_fn) -> None:
    """Golden for `sift template -m <qwen model> --messages ... --tools ... --add-generation-prompt`."""
    path = models_dir() / CLI_MODEL
    if not path.exists():
        print(f"skip CLI golden: {path} missing (run `build/sift models pull qwen2.5-coder-1.5b`)")
        return
    meta = gguf_metadata(path)
    cli = DATA / "cli"
    cli.mkdir(exist_ok=True)
    conv = json.loads((DATA / "conversations" / "tools.json").read_text(encoding="utf-8"))
    write_json(cli / "messages.json", conv["messages"])
    write_json(cli / "tools.json", conv["tools"])
    kwargs = {k: meta[k] for k in ("bos_token", "eos_token") if k in meta}
    result = render(render_fn, meta["chat_template"], conv, True, kwargs)
    (cli / "qwen2.5-coder-1.5b.tools.agp.txt").write_text(result["output"], encoding="utf-8", newline="")
    print(f"wrote cli golden from {CLI_MODEL}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--extract", action="store_true", help="copy templates out of the installed GGUFs first")
    args = ap.parse_args()
    if args.extract:
        extract_gguf_templates()
    render_fn = setup_oracle()
    total = generate_goldens(render_fn)
    total += generate_feature_goldens()
    generate_cli_golden(render_fn)
    print(f"{total} golden renders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
