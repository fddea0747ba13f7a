// Transitional: being written in this session.
#include "cli/cli.h"

namespace sift::cli {
void add_mkmodel_command(CLI::App& app, int& exit_code) {
    auto* sub = app.add_subcommand("mkmodel", "(in progress)");
    sub->callback([&exit_code] { exit_code = 1; });
}
}  // namespace sift::cli
