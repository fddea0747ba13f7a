// Prompt tokens for `sift run --chat`: the model's chat template around one user message.
#pragma once

#include <string>
#include <vector>

#include "core/result.h"
#include "gguf/gguf.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace sift::cli {

// The chat template to use: template_source when given, else the model's
// tokenizer.chat_template (an error saying how to give one when the model has none), with the
// model's bos/eos token texts.
Result<ChatTemplate> model_chat_template(const gguf::File& file, const Tokenizer& tokenizer,
                                         const std::string& template_source = "");

// A conversation from JSON files: `messages_path` holds a list of messages or an object with
// "messages" (and "tools") as in an OpenAI request body; `tools_path` ("" = none) a list of tools.
Result<ChatTemplateInputs> read_conversation(const std::string& messages_path,
                                             const std::string& tools_path);

// Renders [system?, user] with add_generation_prompt and tokenizes it with special tokens parsed
// and none added (the template writes BOS itself where the model wants one), as transformers'
// apply_chat_template(tokenize=True) does. template_source: a Jinja template to use instead of
// the model's tokenizer.chat_template ("" = the model's; a base model has none).
// The rendered prompt text (what chat_prompt_tokens tokenizes).
Result<std::string> chat_prompt_text(const gguf::File& file, const Tokenizer& tokenizer,
                                     const std::string& system, const std::string& user,
                                     const std::string& template_source = "");
Result<std::vector<int32_t>> chat_prompt_tokens(const gguf::File& file, const Tokenizer& tokenizer,
                                                const std::string& system, const std::string& user,
                                                const std::string& template_source = "");

}  // namespace sift::cli
