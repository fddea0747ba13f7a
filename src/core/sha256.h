// Streaming SHA-256 (OpenSSL EVP): hash large files in chunks while they are written or read.
#pragma once

#include "core/result.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace sift {

using Sha256Digest = std::array<uint8_t, 32>;

class Sha256 {
  public:
    Sha256();
    ~Sha256();
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;

    void update(const void* data, size_t size);
    void update(std::string_view data) { update(data.data(), data.size()); }
    // Finishes the hash; the object starts over afterwards and can be reused.
    Sha256Digest finish();
    std::string finish_hex();

  private:
    evp_md_ctx_st* ctx_;
};

std::string sha256_to_hex(const Sha256Digest& digest);
std::string sha256_hex(std::string_view data);
// Hashes a whole file in 4 MiB chunks; the error names the file.
Result<std::string> sha256_file_hex(const std::filesystem::path& path);

}  // namespace sift
