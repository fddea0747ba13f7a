#include "cli/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace sift::cli {

Progress::Progress(std::string label, uint64_t total)
    : label_(std::move(label)),
      total_(total),
      tty_(::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

void Progress::advance(uint64_t bytes) {
    done_ += bytes;
    const auto now = std::chrono::steady_clock::now();
    if (tty_) {
        if (now - last_print_ > std::chrono::milliseconds(200)) {
            last_print_ = now;
            print(false);
        }
    } else {
        const int decile = total_ > 0 ? static_cast<int>(done_ * 10 / total_) : 10;
        if (decile != last_decile_) {
            last_decile_ = decile;
            print(false);
        }
    }
}

void Progress::done() {
    print(true);
}

void Progress::print(bool final) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double mb = static_cast<double>(done_) / 1e6;
    const double percent =
        total_ > 0 ? 100.0 * static_cast<double>(done_) / static_cast<double>(total_) : 100.0;
    fmt::print(stderr, "{}{}: {:.0f} / {:.0f} MB ({:.0f}%), {:.0f} MB/s{}", tty_ ? "\r" : "",
               label_, mb, static_cast<double>(total_) / 1e6, percent,
               seconds > 0 ? mb / seconds : 0.0, tty_ && !final ? "" : "\n");
    std::fflush(stderr);
}

}  // namespace sift::cli
