// Needle-in-a-haystack cases for `sift eval niah` (ALGORITHMS.md section 5 and beyond): a long
// document with facts hidden at chosen depths and a question whose answer is an exact value.
// Generated, deterministic from a seed; no downloads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/result.h"

namespace sift {

enum class NiahTask {
    TASK_SINGLE,      // the reference's format: one "special magic number" needle
    TASK_MULTIKEY,    // one asked needle among distractor needles with other keys
    TASK_MULTIVALUE,  // K needles with the same key, all K values asked
    TASK_PARAPHRASE,  // the question shares no 4-gram with the needle
    TASK_VARTRACK,    // a chain of assignments scattered through the text; the end value asked
    TASK_PASSAGE,     // real text only: the words that follow a quoted passage of the haystack
};

// Tasks that need a real-text haystack (--haystack): the reference filler repeats itself.
bool niah_needs_real_text(NiahTask task);

const char* niah_task_name(NiahTask task);
Result<NiahTask> niah_task_from_name(const std::string& name);  // errors list the names
const std::vector<NiahTask>& niah_all_tasks();

struct NiahCase {
    NiahTask task = NiahTask::TASK_SINGLE;
    std::string document;              // haystack with the needles inserted
    std::string question;              // asked after the document
    std::vector<std::string> answers;  // every one must appear in the reply
    double depth = 0;                  // where the (first) needle sits, fraction of the text
};

struct NiahOptions {
    NiahTask task = NiahTask::TASK_SINGLE;
    int64_t target_tokens = 4096;  // length of the document in the model's tokens
    double depth = 0.5;            // 0..1
    uint64_t seed = 1;
    int32_t needles = 4;  // multikey distractors / multivalue values / vartrack chain length
};

// haystack: the filler text repeated and cut to length (the reference's filler when empty);
// count_tokens: the target model's token count of a text (so lengths are in its tokens).
// A custom haystack is read from a seed-chosen line on (wrapping around), so cases differ.
// Errors: a task that needs real text without a haystack, or one with no usable passage.
Result<NiahCase> niah_make_case(const NiahOptions& options, const std::string& haystack,
                                const std::function<int64_t(const std::string&)>& count_tokens);

// The reference's filler sentence block.
const std::string& niah_reference_filler();

// True when every answer occurs in the reply.
bool niah_correct(const NiahCase& c, const std::string& reply);

}  // namespace sift
