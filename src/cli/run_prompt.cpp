#include "cli/run_prompt.h"

#include "tokenizer/chat_template.h"

namespace sift::cli {
namespace {

std::string token_text_or_empty(const Tokenizer& tok, int32_t id) {
    return id >= 0 && id < tok.n_vocab() ? tok.token_text(id) : std::string();
}

jinja::Value message(const char* role, const std::string& content) {
    jinja::Dict d;
    d.set("role", role);
    d.set("content", content);
    return jinja::Value::dict(std::move(d));
}

}  // namespace

Result<std::vector<int32_t>> chat_prompt_tokens(const gguf::File& file, const Tokenizer& tokenizer,
                                                const std::string& system, const std::string& user,
                                                const std::string& template_source) {
    Result<std::string> text = chat_prompt_text(file, tokenizer, system, user, template_source);
    if (!text) return text.error();
    return tokenizer.encode(*text, false, true);
}

Result<std::string> chat_prompt_text(const gguf::File& file, const Tokenizer& tokenizer,
                                     const std::string& system, const std::string& user,
                                     const std::string& template_source) {
    Result<std::string> source = template_source.empty()
                                     ? file.get_string("tokenizer.chat_template")
                                     : Result<std::string>(template_source);
    if (!source) {
        return make_error(
            "the model has no chat template (tokenizer.chat_template): run without --chat, or "
            "give one with --chat-template FILE");
    }
    const ChatTemplateTokens tokens{token_text_or_empty(tokenizer, tokenizer.special().bos),
                                    token_text_or_empty(tokenizer, tokenizer.special().eos)};
    Result<ChatTemplate> tmpl = ChatTemplate::parse(*source, tokens);
    if (!tmpl) return make_error("chat template: {}", tmpl.message());
    jinja::ValueList messages;
    if (!system.empty()) messages.push_back(message("system", system));
    messages.push_back(message("user", user));
    ChatTemplateInputs inputs;
    inputs.messages = jinja::Value::list(std::move(messages));
    inputs.add_generation_prompt = true;
    Result<std::string> text = tmpl->render(inputs);
    if (!text) return make_error("chat template: {}", text.message());
    return text;
}

}  // namespace sift::cli
