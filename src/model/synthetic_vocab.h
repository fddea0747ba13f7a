// A complete, valid synthetic tokenizer for a synthetic model (`sift mkmodel`).
#pragma once

#include <vector>

#include "model/presets.h"
#include "model/synthetic.h"

namespace sift {

// tokenizer.ggml.* keys (and a chat template) with exactly shape.n_vocab tokens: byte-level BPE
// (gpt2 model, merges consistent with the vocabulary) for qwen/llama shapes, SentencePiece-style
// (llama model, scores, byte-fallback tokens) for gemma3 shapes.
std::vector<MetadataEntry> synthetic_vocab_metadata(const ModelShape& shape);

}  // namespace sift
