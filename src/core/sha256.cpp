#include "core/sha256.h"

#include "core/check.h"

#include <openssl/evp.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace sift {

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
    SIFT_CHECK(ctx_ != nullptr);
    SIFT_CHECK(EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) == 1);
}

Sha256::~Sha256() {
    EVP_MD_CTX_free(ctx_);
}

void Sha256::update(const void* data, size_t size) {
    if (size == 0) return;
    SIFT_CHECK(EVP_DigestUpdate(ctx_, data, size) == 1);
}

Sha256Digest Sha256::finish() {
    Sha256Digest digest{};
    unsigned int length = 0;
    SIFT_CHECK(EVP_DigestFinal_ex(ctx_, digest.data(), &length) == 1);
    SIFT_CHECK(length == digest.size());
    SIFT_CHECK(EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) == 1);
    return digest;
}

std::string Sha256::finish_hex() {
    return sha256_to_hex(finish());
}

std::string sha256_to_hex(const Sha256Digest& digest) {
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string hex(digest.size() * 2, '0');
    for (size_t i = 0; i < digest.size(); ++i) {
        hex[2 * i] = k_hex[digest[i] >> 4];
        hex[2 * i + 1] = k_hex[digest[i] & 15];
    }
    return hex;
}

std::string sha256_hex(std::string_view data) {
    Sha256 hasher;
    hasher.update(data);
    return hasher.finish_hex();
}

Result<std::string> sha256_file_hex(const std::filesystem::path& path) {
    std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!file) return make_error("cannot open {}: {}", path.string(), std::strerror(errno));
    Sha256 hasher;
    std::vector<char> buffer(size_t{4} << 20);
    while (true) {
        size_t n = std::fread(buffer.data(), 1, buffer.size(), file.get());
        hasher.update(buffer.data(), n);
        if (n < buffer.size()) break;
    }
    if (std::ferror(file.get())) {
        return make_error("cannot read {}: {}", path.string(), std::strerror(errno));
    }
    return hasher.finish_hex();
}

}  // namespace sift
