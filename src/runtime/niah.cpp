#include "runtime/niah.h"

#include <fmt/format.h>

#include <algorithm>
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
    }
    return "?";
}

const std::vector<NiahTask>& niah_all_tasks() {
    static const std::vector<NiahTask> all = {NiahTask::TASK_SINGLE, NiahTask::TASK_MULTIKEY,
                                              NiahTask::TASK_MULTIVALUE, NiahTask::TASK_PARAPHRASE,
                                              NiahTask::TASK_VARTRACK};
    return all;
}

Result<NiahTask> niah_task_from_name(const std::string& name) {
    for (NiahTask t : niah_all_tasks())
        if (name == niah_task_name(t)) return t;
    return make_error("unknown task '{}' (single, multikey, multivalue, paraphrase, vartrack)",
                      name);
}

const std::string& niah_reference_filler() {
    static const std::string filler =
        "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back "
        "again. ";
    return filler;
}

NiahCase niah_make_case(const NiahOptions& o, const std::string& haystack_in,
                        const std::function<int64_t(const std::string&)>& count_tokens) {
    const std::string& haystack = haystack_in.empty() ? niah_reference_filler() : haystack_in;
    std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(o.task));
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
    return c;
}

bool niah_correct(const NiahCase& c, const std::string& reply) {
    for (const std::string& a : c.answers)
        if (reply.find(a) == std::string::npos) return false;
    return !c.answers.empty();
}

}  // namespace sift
