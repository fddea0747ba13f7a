#include "runtime/niah.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <random>

namespace sift {
namespace {

const char* const kKeyWords[] = {"umbrella", "lantern", "harbor", "compass", "meadow",  "glacier",
                                 "violin",   "orchard", "falcon", "cobalt",  "saffron", "quarry",
                                 "tundra",   "beacon",  "marble", "thistle", "canyon",  "ember",
                                 "juniper",  "pewter",  "riddle", "sparrow", "walnut",  "zephyr"};
const char* const kVarNames[] = {"ALPHA", "BRAVO", "CEDAR",  "DELTA", "EMBER", "FJORD", "GROVE",
                                 "HAVEN", "IVORY", "JASPER", "KNOLL", "LUMEN", "MOSS",  "NOVA"};

std::string seven_digits(std::mt19937_64& rng) {
    return std::to_string(1000000 + rng() % 9000000);
}

// Repeats the haystack to at least `chars` characters, cut at a sentence or line end.
std::string fill(const std::string& haystack, size_t chars) {
    std::string out;
    while (out.size() < chars) out += haystack;
    size_t cut = chars;
    while (cut < out.size() && out[cut - 1] != '.' && out[cut - 1] != '\n') ++cut;
    out.resize(cut);
    return out;
}

// Inserts `needle` at the sentence boundary nearest to fraction `depth` of the text.
size_t insert_at(std::string& text, double depth, const std::string& needle) {
    size_t at = static_cast<size_t>(depth * static_cast<double>(text.size()));
    while (at < text.size() && at > 0 && text[at - 1] != '.' && text[at - 1] != '\n') ++at;
    if (at < text.size() && text[at] == ' ') ++at;
    text.insert(at, needle + " ");
    return at;
}

// The haystack from the first line start at or after `offset % size`, wrapping around.
std::string rotate_to_line(const std::string& haystack, uint64_t offset) {
    size_t at = static_cast<size_t>(offset % haystack.size());
    const size_t nl = haystack.find('\n', at);
    at = nl == std::string::npos || nl + 1 >= haystack.size() ? 0 : nl + 1;
    return haystack.substr(at) + "\n" + haystack.substr(0, at);
}

bool is_space_char(char ch) {
    return ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r';
}

struct Word {
    size_t begin, end;
};

std::vector<Word> words_from(const std::string& text, size_t at, size_t n) {
    std::vector<Word> out;
    while (out.size() < n && at < text.size()) {
        while (at < text.size() && is_space_char(text[at])) ++at;
        const size_t b = at;
        while (at < text.size() && !is_space_char(text[at])) ++at;
        if (at > b) out.push_back({b, at});
    }
    return out;
}

// The word without surrounding punctuation.
std::string bare(const std::string& text, const Word& w) {
    size_t b = w.begin, e = w.end;
    while (b < e && !std::isalnum(static_cast<unsigned char>(text[b]))) ++b;
    while (e > b && !std::isalnum(static_cast<unsigned char>(text[e - 1]))) --e;
    return text.substr(b, e - b);
}

// TASK_PASSAGE: from the sentence start nearest to `depth` on, the first sentence whose first
// 8 words occur once in the document and are followed, within 4 words, by a word of at least 5
// letters and digits that the quote does not contain. The question quotes the 8 words; the
// answer is that word.
bool choose_passage(NiahCase& c, double depth) {
    const std::string& text = c.document;
    constexpr size_t kQuote = 8, kNext = 4;
    size_t at = static_cast<size_t>(depth * static_cast<double>(text.size()));
    for (int tries = 0; tries < 400 && at < text.size(); ++tries) {
        // Next sentence start: after ". " / "? " / "! " or a line break.
        size_t s = at;
        while (s < text.size() &&
               !(s > 0 && (text[s - 1] == '\n' ||
                           (is_space_char(text[s]) &&
                            (text[s - 1] == '.' || text[s - 1] == '?' || text[s - 1] == '!')))))
            ++s;
        at = s + 1;
        const std::vector<Word> w = words_from(text, s, kQuote + kNext);
        if (w.size() < kQuote + kNext) break;
        const std::string quote_raw = text.substr(w[0].begin, w[kQuote - 1].end - w[0].begin);
        if (text.find(quote_raw) != w[0].begin ||
            text.find(quote_raw, w[0].begin + 1) != std::string::npos)
            continue;
        std::string quote;
        for (size_t i = 0; i < kQuote; ++i) quote += (i ? " " : "") + bare(text, w[i]);
        std::string answer;
        for (size_t i = kQuote; i < kQuote + kNext && answer.empty(); ++i) {
            const std::string b = bare(text, w[i]);
            if (b.size() >= 5 && quote.find(b) == std::string::npos) answer = b;
        }
        if (answer.empty()) continue;
        std::string quoted;
        for (size_t i = 0; i < kQuote; ++i)
            quoted += (i ? " " : "") + text.substr(w[i].begin, w[i].end - w[i].begin);
        c.question = fmt::format(
            "The document contains the passage \"{}\". Quote the next few words that follow it "
            "in the document.",
            quoted);
        c.answers = {answer};
        c.depth = static_cast<double>(w[0].begin) / static_cast<double>(text.size());
        return true;
    }
    return false;
}

}  // namespace

const char* niah_task_name(NiahTask task) {
    switch (task) {
        case NiahTask::TASK_SINGLE:
            return "single";
        case NiahTask::TASK_MULTIKEY:
            return "multikey";
        case NiahTask::TASK_MULTIVALUE:
            return "multivalue";
        case NiahTask::TASK_PARAPHRASE:
            return "paraphrase";
        case NiahTask::TASK_VARTRACK:
            return "vartrack";
        case NiahTask::TASK_PASSAGE:
            return "passage";
    }
    return "?";
}

const std::vector<NiahTask>& niah_all_tasks() {
    static const std::vector<NiahTask> all = {NiahTask::TASK_SINGLE,     NiahTask::TASK_MULTIKEY,
                                              NiahTask::TASK_MULTIVALUE, NiahTask::TASK_PARAPHRASE,
                                              NiahTask::TASK_VARTRACK,   NiahTask::TASK_PASSAGE};
    return all;
}

Result<NiahTask> niah_task_from_name(const std::string& name) {
    for (NiahTask t : niah_all_tasks())
        if (name == niah_task_name(t)) return t;
    return make_error(
        "unknown task '{}' (single, multikey, multivalue, paraphrase, vartrack, passage)", name);
}

bool niah_needs_real_text(NiahTask task) {
    return task == NiahTask::TASK_PASSAGE;
}

const std::string& niah_reference_filler() {
    static const std::string filler =
        "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back "
        "again. ";
    return filler;
}

Result<NiahCase> niah_make_case(const NiahOptions& o, const std::string& haystack_in,
                                const std::function<int64_t(const std::string&)>& count_tokens) {
    if (haystack_in.empty() && niah_needs_real_text(o.task))
        return make_error("task {} needs a real-text haystack (--haystack FILE)",
                          niah_task_name(o.task));
    std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(o.task));
    const std::string haystack =
        haystack_in.empty() ? niah_reference_filler() : rotate_to_line(haystack_in, rng());
    NiahCase c;
    c.task = o.task;
    c.depth = o.depth;

    // Needles and question first, so the filler can make up the remaining length.
    std::vector<std::pair<double, std::string>> needles;  // (depth, text)
    const std::string key = kKeyWords[rng() % std::size(kKeyWords)];
    const std::string value = seven_digits(rng);
    switch (o.task) {
        case NiahTask::TASK_SINGLE:
            needles.push_back(
                {o.depth, fmt::format("The special magic {} number is: {}.", key, value)});
            c.question = fmt::format(
                "What is the special magic {} number? Answer in one short sentence.", key);
            c.answers = {value};
            break;
        case NiahTask::TASK_MULTIKEY: {
            needles.push_back(
                {o.depth, fmt::format("The special magic {} number is: {}.", key, value)});
            std::vector<std::string> used = {key};
            for (int i = 0; i < o.needles; ++i) {
                std::string other;
                do other = kKeyWords[rng() % std::size(kKeyWords)];
                while (std::find(used.begin(), used.end(), other) != used.end());
                used.push_back(other);
                const double d = static_cast<double>(rng() % 900 + 50) / 1000.0;
                needles.push_back({d, fmt::format("The special magic {} number is: {}.", other,
                                                  seven_digits(rng))});
            }
            c.question = fmt::format(
                "What is the special magic {} number? Answer in one short sentence.", key);
            c.answers = {value};
            break;
        }
        case NiahTask::TASK_MULTIVALUE: {
            for (int i = 0; i < std::max(1, o.needles); ++i) {
                const std::string v = seven_digits(rng);
                const double d = i == 0 ? o.depth : static_cast<double>(rng() % 900 + 50) / 1000.0;
                needles.push_back(
                    {d, fmt::format("One of the special magic {} numbers is: {}.", key, v)});
                c.answers.push_back(v);
            }
            c.question = fmt::format(
                "What are all the special magic {} numbers mentioned in the text? List them.", key);
            break;
        }
        case NiahTask::TASK_PARAPHRASE:
            needles.push_back(
                {o.depth, fmt::format("Remember this: the code that opens the {} vault "
                                      "happens to be {}.",
                                      key, value)});
            c.question = fmt::format(
                "Which digits unlock the strongbox named after the {}? Reply briefly.", key);
            c.answers = {value};
            break;
        case NiahTask::TASK_VARTRACK: {
            const int n = std::max(2, o.needles);
            std::vector<std::string> names;
            for (int i = 0; i < n; ++i)
                names.push_back(kVarNames[(rng() + i) % std::size(kVarNames)] +
                                std::to_string(i + 1));
            // VAR1 = value; VAR2 = VAR1; ... spread from the depth on, in order.
            for (int i = 0; i < n; ++i) {
                const double d = o.depth + (1.0 - o.depth) * 0.8 * i / n;
                needles.push_back(
                    {d, i == 0 ? fmt::format("VAR {} = {}.", names[0], value)
                               : fmt::format("VAR {} = VAR {}.", names[i], names[i - 1])});
            }
            c.question = fmt::format(
                "Follow the VAR assignments in the text. What number does VAR {} hold? Answer "
                "with the number.",
                names.back());
            c.answers = {value};
            break;
        }
        case NiahTask::TASK_PASSAGE:
            break;  // chosen from the text below
    }

    // Filler to length: estimate characters per token on a sample, then correct once.
    std::string needle_text;
    for (const auto& n : needles) needle_text += n.second + " ";
    const int64_t needle_tokens = count_tokens(needle_text);
    const int64_t want = std::max<int64_t>(16, o.target_tokens - needle_tokens);
    const std::string sample = fill(haystack, 4000);
    const double chars_per_token = static_cast<double>(sample.size()) /
                                   static_cast<double>(std::max<int64_t>(1, count_tokens(sample)));
    std::string text =
        fill(haystack, static_cast<size_t>(static_cast<double>(want) * chars_per_token));
    const int64_t got = count_tokens(text);
    if (got > 0 && got != want)
        text = fill(haystack,
                    static_cast<size_t>(static_cast<double>(text.size()) *
                                        static_cast<double>(want) / static_cast<double>(got)));
    // Deepest first, so earlier insertions do not move later depths.
    std::sort(needles.begin(), needles.end(),
              [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& n : needles) insert_at(text, n.first, n.second);
    c.document = std::move(text);
    if (o.task == NiahTask::TASK_PASSAGE && !choose_passage(c, o.depth))
        return make_error("passage task: no sentence of the haystack has a distinctive passage");
    return c;
}

bool niah_correct(const NiahCase& c, const std::string& reply) {
    for (const std::string& a : c.answers)
        if (reply.find(a) == std::string::npos) return false;
    return !c.answers.empty();
}

}  // namespace sift
