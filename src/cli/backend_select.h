// Which backend a command runs on: `--device auto|cpu|cuda|cuda:N` and `-ngl N`, shared by the
// subcommands that run a model.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "backend/ops.h"
#include "core/result.h"

namespace sift::cli {

struct BackendChoice {
    std::string device = "auto";  // auto: the first CUDA GPU when there is one, else the CPU
    int n_gpu_layers = -1;        // -1: all; 0: none (CPU)
    int threads = 0;              // CPU threads (0: all cores)
    bool exact = false;           // CPU: F32 matmuls on dequantized weights
    bool profile = false;         // time every op (backend/profiling_backend.h)
};

// Adds --device, -ngl, -t, --exact and --profile to a subcommand.
void add_backend_options(CLI::App& sub, BackendChoice& choice);

// The backend for a model file: -ngl between 0 and the model's layer count is an error (sift
// runs all layers on one device).
Result<std::unique_ptr<Backend>> backend_select(const BackendChoice& choice,
                                                const std::string& model_path);

// Tokens per forward chunk when the user gives none: 512 on the CPU; 4096 on a GPU, where a
// 512-token chunk gives attention too few query tiles to fill the SMs (H200, 2026-11-27: 128K
// prefill of an 8B model 37.3 s at 512, 32.3 s at 4096; the 0.6B drafter 24.8 s vs 12.1 s).
int32_t default_ubatch(const Backend& backend);

}  // namespace sift::cli
