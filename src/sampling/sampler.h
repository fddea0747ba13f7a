// Token sampling: penalties, then top-k, top-p, min-p and temperature, then a seeded draw
// (llama.cpp's default order). Temperature <= 0 is greedy (argmax after penalties).
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <unordered_map>
#include <vector>

namespace sift {

struct SamplerParams {
    float temperature = 0.8f;
    int32_t top_k = 40;           // <= 0: off
    float top_p = 0.95f;          // >= 1: off
    float min_p = 0.05f;          // <= 0: off
    float repeat_penalty = 1.0f;  // 1: off (divides positive logits, multiplies negative ones)
    float frequency_penalty = 0;  // subtracts count * penalty
    float presence_penalty = 0;   // subtracts penalty once a token appeared
    int32_t penalty_last_n = 64;  // tokens of history the penalties look at
    uint64_t seed = 0xC0FFEE;
};

class Sampler {
  public:
    explicit Sampler(const SamplerParams& params);

    // Picks a token from logits [n_vocab] (not modified).
    int32_t sample(std::span<const float> logits);
    // Records a token (prompt or generated) for the penalties.
    void accept(int32_t token);
    void reset();

    const SamplerParams& params() const { return params_; }
    // Greedy without penalties: the choice is the argmax of the raw logits (lowest index on
    // ties), which a backend can find where the logits are (Model::decode_argmax).
    bool plain_greedy() const {
        return params_.temperature <= 0 && params_.repeat_penalty == 1.0f &&
               params_.frequency_penalty == 0 && params_.presence_penalty == 0;
    }

  private:
    SamplerParams params_;
    std::mt19937_64 rng_;
    std::deque<int32_t> history_;
    std::unordered_map<int32_t, int32_t> counts_;
    std::vector<std::pair<float, int32_t>> candidates_;  // (logit, token), reused
};

}  // namespace sift
