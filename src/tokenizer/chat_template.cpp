#include "tokenizer/chat_template.h"

#include <utility>

namespace sift {
namespace {

using jinja::Dict;
using jinja::Value;

// apply_chat_template drops message keys whose value is None (APIs send content=None with
// tool_calls), then fills `reasoning_content` and `thinking` from whichever reasoning field the
// message has (_alias_reasoning_fields), so templates can read either name.
Value normalize_message(const Value& message) {
    if (!message.is_dict()) return message;
    Dict kept;
    kept.items.reserve(message.as_dict().items.size() + 2);
    for (const auto& [key, value] : message.as_dict().items)
        if (!value.is_none()) kept.items.emplace_back(key, value);
    const Value* reasoning = nullptr;
    for (const char* field : {"reasoning_content", "thinking", "reasoning"}) {
        if (const Value* v = kept.find(field)) {
            reasoning = v;
            break;
        }
    }
    if (!reasoning) return Value::dict(std::move(kept));
    // {"thinking": r, **message, "reasoning_content": r}
    const Value r = *reasoning;
    Dict out;
    out.items.reserve(kept.items.size() + 2);
    out.items.emplace_back("thinking", r);
    for (auto& [key, value] : kept.items) out.set(key, std::move(value));
    out.set("thinking", r);
    out.set("reasoning_content", r);
    return Value::dict(std::move(out));
}

}  // namespace

Result<ChatTemplate> ChatTemplate::parse(std::string_view source, ChatTemplateTokens tokens) {
    Result<jinja::Template> t = jinja::Template::parse(source);
    if (!t) return make_error("chat template: {}", t.message());
    ChatTemplate out;
    out.source_ = std::string(source);
    out.tokens_ = std::move(tokens);
    out.template_ = std::move(*t);
    return out;
}

Result<std::string> ChatTemplate::render(const ChatTemplateInputs& inputs) const {
    if (!inputs.messages.is_list())
        return make_error("chat template: messages must be a list, got {}",
                          jinja::py_type_name(inputs.messages));
    if (inputs.messages.as_list().empty())
        return make_error("chat template: cannot render an empty conversation");
    jinja::ValueList messages;
    messages.reserve(inputs.messages.as_list().size());
    for (const Value& m : inputs.messages.as_list()) {
        if (!m.is_dict())
            return make_error("chat template: messages must be dicts, got {}",
                              jinja::py_type_name(m));
        messages.push_back(normalize_message(m));
    }

    // render(messages=..., tools=..., documents=..., add_generation_prompt=...,
    //        **{**special_tokens_map, **kwargs})
    Dict context;
    context.items.reserve(8 + inputs.extra.items.size());
    context.set("messages", Value::list(std::move(messages)));
    context.set("tools", inputs.tools.is_undefined() ? Value::none() : inputs.tools);
    context.set("documents", Value::none());
    context.set("add_generation_prompt", Value(inputs.add_generation_prompt));
    if (!tokens_.bos_token.empty()) context.set("bos_token", Value(tokens_.bos_token));
    if (!tokens_.eos_token.empty()) context.set("eos_token", Value(tokens_.eos_token));
    if (inputs.enable_thinking) context.set("enable_thinking", Value(*inputs.enable_thinking));
    for (const auto& [key, value] : inputs.extra.items) context.set(key, value);

    jinja::RenderOptions options;
    options.now = inputs.now;
    Result<std::string> out = template_.render(context, options);
    if (!out) return make_error("chat template: {}", out.message());
    return out;
}

}  // namespace sift
