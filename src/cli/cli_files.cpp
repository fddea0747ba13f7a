#include "cli/cli_files.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/model_store.h"

namespace sift::cli {

Result<std::string> read_text_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error("cannot read {}", path);
    std::stringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return make_error("error while reading {}", path);
    return ss.str();
}

Result<std::string> resolve_model(const std::string& model) {
    if (std::filesystem::exists(model)) return model;
    Result<Manifest> manifest = manifest_load("");
    if (manifest) {
        if (const ModelEntry* entry = manifest->find(model)) {
            Result<std::filesystem::path> dir = models_dir_resolve("");
            if (dir) {
                const std::filesystem::path path = *dir / entry->file;
                if (std::filesystem::exists(path)) return path.string();
                return make_error("model '{}' is not installed (run `sift models pull {}`)", model,
                                  model);
            }
        }
    }
    return make_error("model file not found: {}", model);
}

}  // namespace sift::cli
