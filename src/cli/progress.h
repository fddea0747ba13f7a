// Byte progress on stderr: \r updates on a terminal, a line every 10% otherwise.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace sift::cli {

class Progress {
  public:
    Progress(std::string label, uint64_t total);
    void advance(uint64_t bytes);
    void done();

  private:
    void print(bool final);
    std::string label_;
    uint64_t total_;
    uint64_t done_ = 0;
    int last_decile_ = -1;
    bool tty_;
    std::chrono::steady_clock::time_point start_;
    std::chrono::steady_clock::time_point last_print_;
};

}  // namespace sift::cli
