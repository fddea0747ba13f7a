#include "sampling/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <tuple>

#include "sampling/stop.h"

namespace sift {
namespace {

TEST(Sampler, GreedyPicksTheLargestLogitLowestIndexOnTies) {
    SamplerParams p;
    p.temperature = 0;
    Sampler s(p);
    EXPECT_EQ(s.sample(std::vector<float>{0.1f, 3.0f, -1.0f, 3.0f}), 1);
}

TEST(Sampler, RepeatPenaltyDemotesSeenTokens) {
    SamplerParams p;
    p.temperature = 0;
    p.repeat_penalty = 2.0f;
    Sampler s(p);
    s.accept(1);
    // 3.0 / 2 = 1.5 < 2.0
    EXPECT_EQ(s.sample(std::vector<float>{0.0f, 3.0f, 2.0f}), 2);
    p.repeat_penalty = 1.0f;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.4f;
    Sampler t(p);
    t.accept(1);
    t.accept(1);
    // 3.0 - 0.5 - 2 * 0.4 = 1.7 < 2.0
    EXPECT_EQ(t.sample(std::vector<float>{0.0f, 3.0f, 2.0f}), 2);
}

TEST(Sampler, SameSeedSameDrawsAndDistributionFollowsSoftmax) {
    SamplerParams p;
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0;
    p.seed = 7;
    const std::vector<float> logits = {0.0f, std::log(3.0f)};  // probabilities 1/4, 3/4
    Sampler a(p), b(p);
    std::map<int, int> counts;
    for (int i = 0; i < 20000; ++i) {
        const int x = a.sample(logits);
        EXPECT_EQ(x, b.sample(logits));
        ++counts[x];
    }
    // Binomial sd is sqrt(20000 * 0.75 * 0.25) = 61: 5 sd is about 300.
    EXPECT_NEAR(counts[1], 15000, 300);
}

TEST(Sampler, TopKTopPAndMinPRestrictTheCandidates) {
    const std::vector<float> logits = {5.0f, 4.9f, 0.0f, -1.0f};
    for (const auto& [k, top_p, min_p] :
         {std::tuple{2, 1.0f, 0.0f}, std::tuple{0, 0.6f, 0.0f}, std::tuple{0, 1.0f, 0.5f}}) {
        SamplerParams p;
        p.temperature = 5.0f;  // flattens, so the filters alone keep tokens 2 and 3 out
        p.top_k = k;
        p.top_p = top_p;
        p.min_p = min_p;
        Sampler s(p);
        for (int i = 0; i < 2000; ++i)
            EXPECT_LT(s.sample(logits), 2) << k << " " << top_p << " " << min_p;
    }
}

TEST(StopMatcher, HoldsBackPrefixesAndCutsAtTheStopString) {
    StopMatcher m({"</end>", "STOP"});
    EXPECT_EQ(m.push("hello </"), "hello ");
    EXPECT_EQ(m.push("e"), "");
    EXPECT_EQ(m.push("x"), "</ex");
    EXPECT_EQ(m.push(" ST"), " ");
    EXPECT_EQ(m.push("OP and more"), "");
    EXPECT_TRUE(m.stopped());
    EXPECT_EQ(m.matched(), "STOP");
    EXPECT_EQ(m.push("later"), "");
    EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, FlushReturnsHeldTextWhenNoStop) {
    StopMatcher m({"abc"});
    EXPECT_EQ(m.push("xxab"), "xx");
    EXPECT_EQ(m.flush(), "ab");
    StopMatcher none({});
    EXPECT_EQ(none.push("text"), "text");
}

}  // namespace
}  // namespace sift
