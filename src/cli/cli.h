// The `sift` command line: each subcommand registers itself on the CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

namespace sift::cli {

// Each add_*_command adds a subcommand whose callback stores its exit code in `exit_code`.
void add_inspect_command(CLI::App& app, int& exit_code);
void add_models_command(CLI::App& app, int& exit_code);
void add_mkmodel_command(CLI::App& app, int& exit_code);
void add_info_command(CLI::App& app, int& exit_code);
void add_template_command(CLI::App& app, int& exit_code);
void add_run_command(CLI::App& app, int& exit_code);
void add_bench_command(CLI::App& app, int& exit_code);
void add_eval_command(CLI::App& app, int& exit_code);
void add_tokenize_commands(CLI::App& app, int& exit_code);  // tokenize, detokenize

int cli_main(int argc, char** argv);

}  // namespace sift::cli
