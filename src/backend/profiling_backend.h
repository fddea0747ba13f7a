// A Backend that times every op of another one, for `--profile`: where a forward spends its
// time, by op and shape. Each op is bracketed by synchronize() and timed on the host, so GPU
// kernels are measured with their launch cost and nothing overlaps; graphs are not offered (a
// captured op cannot be timed), so a profiled decode runs op by op. Not for production runs.
#pragma once

#include <memory>
#include <string>

#include "backend/ops.h"

namespace sift {

class ProfilingBackend;

// Wraps `inner`; the returned backend owns it.
std::unique_ptr<Backend> backend_profile_wrap(std::unique_ptr<Backend> inner);

// The profile so far as a table (one row per op kind and shape, most time first), or "" when
// `backend` is not a profiling wrapper.
std::string backend_profile_report(const Backend& backend);

}  // namespace sift
