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
};

// Adds --device, -ngl, -t and --exact to a subcommand.
void add_backend_options(CLI::App& sub, BackendChoice& choice);

// The backend for a model file: -ngl between 0 and the model's layer count is an error (sift
// runs all layers on one device).
Result<std::unique_ptr<Backend>> backend_select(const BackendChoice& choice,
                                                const std::string& model_path);

}  // namespace sift::cli
