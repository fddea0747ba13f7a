// Stop strings over streamed text: emits what can no longer start a stop string and holds back
// the rest, so a stop string split across tokens is never printed.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sift {

class StopMatcher {
  public:
    explicit StopMatcher(std::vector<std::string> stops);

    // Appends text and returns what is safe to emit. After a stop string completes, returns the
    // text before it and stopped() is true; later pushes return nothing.
    std::string push(std::string_view text);
    // The held-back text (at the end of generation).
    std::string flush();
    bool stopped() const { return stopped_; }
    const std::string& matched() const { return matched_; }

  private:
    std::vector<std::string> stops_;
    std::string pending_;
    std::string matched_;
    bool stopped_ = false;
};

}  // namespace sift
