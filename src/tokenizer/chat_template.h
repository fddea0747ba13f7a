// Chat templates (GGUF `tokenizer.chat_template`): renders a conversation into the prompt text
// exactly as transformers' apply_chat_template does, using sift's Jinja engine. The template is
// parsed once; render() can be called any number of times (it is const and thread-safe).
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "tokenizer/jinja_template.h"
#include "tokenizer/jinja_value.h"

namespace sift {

struct ChatTemplateInputs {
    jinja::Value messages;  // list of message dicts (role, content, tool_calls, ...)
    jinja::Value tools;  // list of tool dicts; undefined or none: no tools (the template sees None)
    bool add_generation_prompt = false;
    std::optional<bool> enable_thinking;  // passed only when set, as templates test `is defined`
    jinja::Dict extra;           // more template variables (date_string, preserve_thinking)
    std::optional<std::tm> now;  // clock for strftime_now(); unset: the local time
};

// Special token texts the template sees as bos_token/eos_token (empty: not defined), as
// transformers passes the tokenizer's special_tokens_map.
struct ChatTemplateTokens {
    std::string bos_token;
    std::string eos_token;
};

class ChatTemplate {
  public:
    static Result<ChatTemplate> parse(std::string_view source, ChatTemplateTokens tokens = {});

    // Errors name the template line and column (or the raise_exception message).
    Result<std::string> render(const ChatTemplateInputs& inputs) const;

    const std::string& source() const { return source_; }

  private:
    std::string source_;
    ChatTemplateTokens tokens_;
    jinja::Template template_;
};

}  // namespace sift
