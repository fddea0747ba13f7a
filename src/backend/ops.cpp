#include "backend/ops.h"

#include <cmath>

namespace sift {

std::vector<double> rope_inv_freq(const RopeParams& p, const float* factors) {
    std::vector<double> inv_freq(static_cast<size_t>(p.n_rot / 2));
    for (int i = 0; i < p.n_rot / 2; ++i) {
        inv_freq[static_cast<size_t>(i)] =
            p.freq_scale * std::pow(static_cast<double>(p.freq_base), -2.0 * i / p.n_rot) /
            (factors != nullptr ? factors[i] : 1.0);
    }
    return inv_freq;
}

}  // namespace sift
