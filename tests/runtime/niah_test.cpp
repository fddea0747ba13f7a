// Needle-in-a-haystack case generation: every task hides its answers in a document of about the
// asked length, at the asked depth, and scoring is by exact value.
#include "runtime/niah.h"

#include <gtest/gtest.h>

#include <set>

namespace sift {
namespace {

// A stand-in token count: whitespace-separated words.
int64_t words(const std::string& s) {
    int64_t n = 0;
    bool in = false;
    for (char c : s) {
        const bool space = c == ' ' || c == '\n' || c == '\t';
        if (!space && !in) ++n;
        in = !space;
    }
    return n;
}

TEST(Niah, EveryTaskHidesItsAnswersAtTheRightLength) {
    for (NiahTask task : niah_all_tasks()) {
        if (niah_needs_real_text(task)) continue;
        for (double depth : {0.1, 0.5, 0.9}) {
            NiahOptions o;
            o.task = task;
            o.depth = depth;
            o.target_tokens = 3000;
            o.seed = 11;
            const NiahCase c = *niah_make_case(o, "", words);
            SCOPED_TRACE(niah_task_name(task));
            ASSERT_FALSE(c.answers.empty());
            for (const std::string& a : c.answers) {
                EXPECT_EQ(a.size(), 7u);
                EXPECT_NE(c.document.find(a), std::string::npos);
            }
            EXPECT_NEAR(static_cast<double>(words(c.document)), 3000.0, 150.0);
            EXPECT_FALSE(c.question.empty());
            EXPECT_TRUE(niah_correct(
                c, "It is " + [&] {
                    std::string all;
                    for (const auto& a : c.answers) all += a + " ";
                    return all;
                }()));
            EXPECT_FALSE(niah_correct(c, "I do not know."));
        }
    }
}

TEST(Niah, SingleNeedleSitsAtItsDepthAndCasesDifferBySeed) {
    NiahOptions o;
    o.depth = 0.25;
    o.target_tokens = 2000;
    const NiahCase a = *niah_make_case(o, "", words);
    const double at =
        static_cast<double>(a.document.find(a.answers[0])) / static_cast<double>(a.document.size());
    EXPECT_NEAR(at, 0.25, 0.03);
    o.seed = 2;
    const NiahCase b = *niah_make_case(o, "", words);
    EXPECT_NE(a.answers, b.answers);
    // Deterministic.
    o.seed = 1;
    EXPECT_EQ(niah_make_case(o, "", words)->document, a.document);
}

TEST(Niah, ParaphraseSharesNoFourWordRunWithTheNeedle) {
    NiahOptions o;
    o.task = NiahTask::TASK_PARAPHRASE;
    o.target_tokens = 500;
    const NiahCase c = *niah_make_case(o, "", words);
    auto grams = [](const std::string& s) {
        std::vector<std::string> w;
        std::string cur;
        for (char ch : s + " ") {
            if (ch == ' ') {
                if (!cur.empty()) w.push_back(cur);
                cur.clear();
            } else {
                cur += ch;
            }
        }
        std::set<std::string> g;
        for (size_t i = 0; i + 4 <= w.size(); ++i)
            g.insert(w[i] + " " + w[i + 1] + " " + w[i + 2] + " " + w[i + 3]);
        return g;
    };
    const std::set<std::string> q = grams(c.question);
    for (const std::string& g : grams(c.document)) EXPECT_EQ(q.count(g), 0u) << g;
}

TEST(Niah, HaystackTextIsUsedAndTaskNamesParse) {
    NiahOptions o;
    o.target_tokens = 800;
    const NiahCase c =
        *niah_make_case(o, "In the beginning was the word, and the word was long.\n", words);
    EXPECT_NE(c.document.find("In the beginning"), std::string::npos);
    EXPECT_EQ(c.document.find("The grass is green"), std::string::npos);
    for (NiahTask t : niah_all_tasks()) EXPECT_EQ(*niah_task_from_name(niah_task_name(t)), t);
    EXPECT_FALSE(niah_task_from_name("nope").ok());
}

// Real text in the manner of a book: numbered verses, repeated phrases.
std::string book() {
    std::string s;
    const char* const verbs[] = {"gathered", "carried", "planted", "measured", "remembered"};
    const char* const things[] = {"barley", "cedars", "lanterns", "silver", "harvests", "stones"};
    for (int i = 0; i < 400; ++i)
        s += "Verse " + std::to_string(i) + ": and the people " + verbs[i % 5] + " the " +
             things[(i * 7) % 6] + " of the valley number " + std::to_string(i * 31 % 97) +
             " before the evening came.\n";
    return s;
}

TEST(Niah, PassageQuotesAUniqueRunAndAsksForTheNextWord) {
    const std::string haystack = book();
    for (uint64_t seed : {1, 2, 3}) {
        NiahOptions o;
        o.task = NiahTask::TASK_PASSAGE;
        o.target_tokens = 2000;
        o.depth = 0.4;
        o.seed = seed;
        Result<NiahCase> c = niah_make_case(o, haystack, words);
        ASSERT_TRUE(c) << c.message();
        ASSERT_EQ(c->answers.size(), 1u);
        EXPECT_GE(c->answers[0].size(), 5u);
        // The quote occurs once, the answer follows it closely and is not in the question.
        const size_t q0 = c->question.find('"') + 1;
        const std::string quote = c->question.substr(q0, c->question.find('"', q0) - q0);
        const size_t at = c->document.find(quote);
        ASSERT_NE(at, std::string::npos) << quote;
        EXPECT_EQ(c->document.find(quote, at + 1), std::string::npos);
        const size_t ans = c->document.find(c->answers[0], at + quote.size());
        ASSERT_NE(ans, std::string::npos);
        EXPECT_LT(ans - (at + quote.size()), 60u);
        EXPECT_EQ(c->question.find(c->answers[0]), std::string::npos);
        EXPECT_NEAR(c->depth, 0.4, 0.1);
        EXPECT_TRUE(niah_correct(*c, "... " + c->answers[0] + " the"));
    }
    NiahOptions o;
    o.task = NiahTask::TASK_PASSAGE;
    EXPECT_FALSE(niah_make_case(o, "", words).ok());  // the filler has no distinctive passage
    // A haystack that is one sentence repeated has no passage that occurs once.
    EXPECT_FALSE(niah_make_case(o, "The same words again and again forever here.\n", words).ok());
}

}  // namespace
}  // namespace sift
