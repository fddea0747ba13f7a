#include "sampling/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sift {

Sampler::Sampler(const SamplerParams& params) : params_(params), rng_(params.seed) {}

void Sampler::reset() {
    rng_.seed(params_.seed);
    history_.clear();
    counts_.clear();
}

void Sampler::accept(int32_t token) {
    if (params_.penalty_last_n <= 0) return;
    history_.push_back(token);
    ++counts_[token];
    if (static_cast<int32_t>(history_.size()) > params_.penalty_last_n) {
        const int32_t old = history_.front();
        history_.pop_front();
        if (--counts_[old] == 0) counts_.erase(old);
    }
}

int32_t Sampler::sample(std::span<const float> logits) {
    const SamplerParams& p = params_;
    candidates_.resize(logits.size());
    for (size_t i = 0; i < logits.size(); ++i)
        candidates_[i] = {logits[i], static_cast<int32_t>(i)};
    for (const auto& [token, count] : counts_) {
        if (token < 0 || static_cast<size_t>(token) >= logits.size()) continue;
        float& l = candidates_[static_cast<size_t>(token)].first;
        if (p.repeat_penalty != 1.0f) l = l > 0 ? l / p.repeat_penalty : l * p.repeat_penalty;
        l -= static_cast<float>(count) * p.frequency_penalty + p.presence_penalty;
    }
    auto by_logit = [](const auto& a, const auto& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    if (p.temperature <= 0) {
        return std::min_element(candidates_.begin(), candidates_.end(), by_logit)->second;
    }
    size_t n = candidates_.size();
    if (p.top_k > 0 && static_cast<size_t>(p.top_k) < n) n = static_cast<size_t>(p.top_k);
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(n),
                      candidates_.end(), by_logit);
    candidates_.resize(n);

    // Probabilities at temperature 1 for top-p and min-p, as llama.cpp filters before scaling.
    const float max_logit = candidates_.front().first;
    std::vector<double> probs(n);
    double sum = 0;
    for (size_t i = 0; i < n; ++i)
        sum += probs[i] = std::exp(double{candidates_[i].first - max_logit});
    if (p.top_p < 1.0f) {
        double cumulative = 0;
        for (size_t i = 0; i < n; ++i) {
            cumulative += probs[i] / sum;
            if (cumulative >= p.top_p) {
                n = i + 1;
                break;
            }
        }
    }
    if (p.min_p > 0) {
        size_t keep = 1;
        while (keep < n && probs[keep] >= p.min_p * probs[0]) ++keep;
        n = keep;
    }
    double total = 0;
    for (size_t i = 0; i < n; ++i) {
        total += probs[i] = std::exp(double{candidates_[i].first - max_logit} / p.temperature);
    }
    std::uniform_real_distribution<double> uniform(0.0, total);
    double r = uniform(rng_);
    for (size_t i = 0; i < n; ++i) {
        r -= probs[i];
        if (r <= 0) return candidates_[i].second;
    }
    return candidates_[n - 1].second;
}

}  // namespace sift
