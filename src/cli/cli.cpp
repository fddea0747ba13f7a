#include "cli/cli.h"

#include <fmt/format.h>

#include <exception>
#include <string>
#include <vector>

namespace sift::cli {

int cli_main(int argc, char** argv) {
    CLI::App app{
        "sift: local LLM inference for long prompts (GGUF models, speculative prefill).\n"
        "Run `sift COMMAND --help` for a command's options."};
    app.set_version_flag("--version", std::string("sift ") + SIFT_VERSION);
    app.require_subcommand(1);
    app.fallthrough(false);

    int exit_code = 0;
    add_run_command(app, exit_code);
    add_bench_command(app, exit_code);
    add_eval_command(app, exit_code);
    add_inspect_command(app, exit_code);
    add_models_command(app, exit_code);
    add_mkmodel_command(app, exit_code);
    add_info_command(app, exit_code);
    add_template_command(app, exit_code);
    add_tokenize_commands(app, exit_code);

    // llama.cpp's spelling -ngl is a multi-letter single-dash option, which CLI11 does not allow.
    std::vector<std::string> args;
    for (int i = argc - 1; i >= 1; --i)
        args.push_back(std::string(argv[i]) == "-ngl" ? "--ngl" : argv[i]);
    try {
        app.parse(args);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    } catch (const std::exception& e) {
        fmt::print(stderr, "sift: error: {}\n", e.what());
        return 1;
    }
    return exit_code;
}

}  // namespace sift::cli
