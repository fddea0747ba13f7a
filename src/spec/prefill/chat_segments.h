// Structure-aware compression (ALGORITHMS.md 1.4): which bytes of a rendered chat prompt
// speculative prefill may cut. Only long context inside messages is compressible (documents in
// user turns, tool results, long history); the system prompt, tool definitions, template markup
// and the final user question are always kept, so the stable prefix an agent resends every turn
// stays byte-identical and the prefix cache keeps hitting.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/result.h"
#include "spec/prefill/pflash.h"
#include "tokenizer/chat_template.h"

namespace sift::spec {

struct SegmentPolicy {
    int64_t min_bytes = 2048;  // message contents shorter than this are kept whole
    bool history = true;       // earlier user and assistant messages may be compressed
    bool tool_results = true;  // tool / function results may be compressed
    bool final_user = true;    // the final user message, all but its question, may be compressed
    // The final user message's question: its last paragraph (after the last blank line) when at
    // most this long, else its last `question_bytes` bytes from a line or word start.
    int64_t question_bytes = 2000;
};

struct ChatSegment {
    size_t message = 0;  // index in the messages list
    int part = -1;       // index in a list of content parts, -1 for string content
    std::string role;
    ByteRange range;         // the content's bytes in the rendered text (empty if not found)
    ByteRange compressible;  // the part of it that may be cut (empty: none)
    std::string reason;      // why it is (not) compressible
};

struct ChatPrompt {
    std::string text;                   // exactly what rendering the template gives
    std::vector<ChatSegment> segments;  // one per message content (or content part)
    std::vector<ByteRange> protect;     // everything outside the compressible ranges

    int64_t compressible_bytes() const;
    // "3 of 7 message contents compressible (41,234 of 45,120 bytes); kept whole: system, ..."
    std::string summary() const;
};

// Renders the conversation and locates every message content in the text: by rendering once
// more with each content replaced by a sentinel and checking that substituting the contents back
// gives the same text (exact for templates that print contents verbatim), else by searching the
// contents (and their trimmed forms) in order. Contents that cannot be located are kept whole.
Result<ChatPrompt> render_chat_segments(const ChatTemplate& tmpl, const ChatTemplateInputs& inputs,
                                        const SegmentPolicy& policy);

}  // namespace sift::spec
