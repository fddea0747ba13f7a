#include "cli/run_prompt.h"

#include "cli/cli_files.h"
#include "cli/json_jinja.h"

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

Result<ChatTemplate> model_chat_template(const gguf::File& file, const Tokenizer& tokenizer,
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
    return tmpl;
}

static Result<jinja::Value> read_json_file(const std::string& path) {
    Result<std::string> text = read_text_file(path);
    if (!text) return text.error();
    return json_text_to_jinja(*text, path);
}

Result<ChatTemplateInputs> read_conversation(const std::string& messages_path,
                                             const std::string& tools_path) {
    ChatTemplateInputs inputs;
    Result<jinja::Value> messages = read_json_file(messages_path);
    if (!messages) return messages.error();
    if (messages->is_dict()) {
        const jinja::Value* m = messages->as_dict().find("messages");
        if (!m) return make_error("{}: object without a \"messages\" list", messages_path);
        if (const jinja::Value* t = messages->as_dict().find("tools")) inputs.tools = *t;
        inputs.messages = *m;
    } else {
        inputs.messages = *messages;
    }
    if (!inputs.messages.is_list())
        return make_error("{}: \"messages\" must be a list of messages", messages_path);
    for (const jinja::Value& m : inputs.messages.as_list()) {
        const jinja::Value* role = m.is_dict() ? m.as_dict().find("role") : nullptr;
        if (!role || !role->is_string())
            return make_error("{}: every message needs a \"role\" string", messages_path);
    }
    if (!tools_path.empty()) {
        Result<jinja::Value> tools = read_json_file(tools_path);
        if (!tools) return tools.error();
        if (!tools->is_list()) return make_error("{}: tools must be a JSON list", tools_path);
        inputs.tools = *tools;
    }
    return inputs;
}

Result<std::string> chat_prompt_text(const gguf::File& file, const Tokenizer& tokenizer,
                                     const std::string& system, const std::string& user,
                                     const std::string& template_source) {
    Result<ChatTemplate> tmpl = model_chat_template(file, tokenizer, template_source);
    if (!tmpl) return tmpl.error();
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
