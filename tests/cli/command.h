// Runs a shell command and captures its exit code, stdout and stderr (for CLI tests).
#pragma once

#include <fmt/format.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace sift {

struct CommandResult {
    int exit_code = -1;
    std::string out;
    std::string err;
};

inline std::string slurp(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Where `make test` installs the real models: $SIFT_MODELS, else ~/.cache/sift/models.
inline std::filesystem::path test_models_dir() {
    if (const char* env = std::getenv("SIFT_MODELS"); env && *env) return env;
    const char* home = std::getenv("HOME");
    return std::filesystem::path(home ? home : "/nonexistent") / ".cache" / "sift" / "models";
}

// A shell word: single-quoted, with embedded quotes escaped.
inline std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

inline CommandResult run_command(const std::string& command) {
    static int counter = 0;
    const auto base = std::filesystem::temp_directory_path() /
                      fmt::format("sift_cmd_{}_{}", ::getpid(), counter++);
    const std::string out_path = base.string() + ".out", err_path = base.string() + ".err";
    const int status = std::system(fmt::format("{} >{} 2>{}", command, out_path, err_path).c_str());
    CommandResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = slurp(out_path);
    r.err = slurp(err_path);
    std::filesystem::remove(out_path);
    std::filesystem::remove(err_path);
    return r;
}

}  // namespace sift
