// Synthetic model shapes shared by the model-layer tests.
#pragma once

#include "model/synthetic_writer.h"

namespace sift::test {

// A two-layer Qwen3 of head_dim 16 (2 KV heads of 4 query heads), 512 trained positions: loads
// and runs in milliseconds. Fields: arch, preset, name, layers, embd, heads, kv heads, head dim,
// ff, vocab, ctx, theta, eps, tied, swa.
inline constexpr ModelShape kTinyQwen3 = {"qwen3", "tiny", "tiny", 2,    64,    4,    2, 16,
                                          128,     320,    512,    1e4f, 1e-6f, true, 0};

}  // namespace sift::test
