// `sift template`: renders a conversation with a model's chat template, printing exactly the
// prompt text the model would be given (no trailing newline added).
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "cli/cli.h"
#include "cli/cli_files.h"
#include "cli/json_jinja.h"
#include "cli/model_store.h"
#include "cli/run_prompt.h"
#include "gguf/gguf.h"
#include "tokenizer/chat_template.h"

namespace sift::cli {
namespace {

struct TemplateOptions {
    std::string model;
    std::string messages;
    std::string tools;
    std::string template_file;
    std::string enable_thinking;
    std::string kwargs;
    bool add_generation_prompt = false;
};

std::string token_text(const gguf::File& file, const char* key) {
    Result<uint64_t> id = file.get_u64(key);
    Result<const gguf::Array*> tokens = file.get_array("tokenizer.ggml.tokens");
    if (!id || !tokens || *id >= (*tokens)->items.size()) return "";
    const std::string* s = (*tokens)->items[*id].as_string();
    return s ? *s : "";
}

int fail(const std::string& message) {
    fmt::print(stderr, "sift: error: {}\n", message);
    return 1;
}

int run_template(const TemplateOptions& opt) {
    std::string source;
    ChatTemplateTokens tokens;
    if (!opt.model.empty()) {
        Result<std::string> path = resolve_model(opt.model);
        if (!path) return fail(path.message());
        Result<std::unique_ptr<gguf::File>> file = gguf::File::open(*path);
        if (!file) return fail(file.message());
        tokens.bos_token = token_text(**file, "tokenizer.ggml.bos_token_id");
        tokens.eos_token = token_text(**file, "tokenizer.ggml.eos_token_id");
        if (opt.template_file.empty()) {
            Result<std::string> t = (*file)->get_string("tokenizer.chat_template");
            if (!t)
                return fail(
                    fmt::format("{} has no tokenizer.chat_template; pass --template FILE", *path));
            source = std::move(*t);
        }
    }
    if (!opt.template_file.empty()) {
        Result<std::string> t = read_text_file(opt.template_file);
        if (!t) return fail(t.message());
        source = std::move(*t);
    }

    Result<ChatTemplate> tmpl = ChatTemplate::parse(source, tokens);
    if (!tmpl) return fail(tmpl.message());

    Result<ChatTemplateInputs> conversation = read_conversation(opt.messages, opt.tools);
    if (!conversation) return fail(conversation.message());
    ChatTemplateInputs& inputs = *conversation;
    inputs.add_generation_prompt = opt.add_generation_prompt;
    if (!opt.enable_thinking.empty()) {
        if (opt.enable_thinking != "true" && opt.enable_thinking != "false")
            return fail("--enable-thinking takes true or false");
        inputs.enable_thinking = opt.enable_thinking == "true";
    }
    if (!opt.kwargs.empty()) {
        Result<jinja::Value> kwargs = json_text_to_jinja(opt.kwargs, "--kwargs");
        if (!kwargs) return fail(kwargs.message());
        if (!kwargs->is_dict()) return fail("--kwargs must be a JSON object");
        inputs.extra = kwargs->as_dict();
    }

    Result<std::string> out = tmpl->render(inputs);
    if (!out) return fail(out.message());
    std::fwrite(out->data(), 1, out->size(), stdout);
    std::fflush(stdout);
    return 0;
}

}  // namespace

void add_template_command(CLI::App& app, int& exit_code) {
    auto opt = std::make_shared<TemplateOptions>();
    CLI::App* sub = app.add_subcommand(
        "template", "Render a conversation with a model's chat template (prints the prompt)");
    sub->add_option("-m,--model", opt->model,
                    "GGUF model (path or manifest name) giving tokenizer.chat_template and "
                    "bos/eos tokens");
    sub->add_option("--messages", opt->messages,
                    "JSON file: a list of messages, or an object with \"messages\" (and \"tools\")")
        ->required();
    sub->add_option("--tools", opt->tools, "JSON file: a list of tool (function) definitions");
    sub->add_flag("--add-generation-prompt", opt->add_generation_prompt,
                  "End with the header of an assistant turn");
    sub->add_option("--enable-thinking", opt->enable_thinking,
                    "Pass enable_thinking=true|false to the template");
    sub->add_option("--template", opt->template_file,
                    "Jinja template file to use instead of the model's");
    sub->add_option("--kwargs", opt->kwargs,
                    "JSON object of extra template variables, e.g. '{\"date_string\": \"26 Jul "
                    "2024\"}'");
    sub->callback([opt, &exit_code] {
        if (opt->model.empty() && opt->template_file.empty()) {
            exit_code = fail("pass -m MODEL or --template FILE");
            return;
        }
        exit_code = run_template(*opt);
    });
}

}  // namespace sift::cli
