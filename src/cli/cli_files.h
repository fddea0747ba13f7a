// Small helpers shared by the subcommands: reading input files and finding a model by path or
// manifest name.
#pragma once

#include <string>

#include "core/result.h"

namespace sift::cli {

// The whole file as bytes; the error names the path.
Result<std::string> read_text_file(const std::string& path);

// A path to an existing file, or a name from the model manifest whose file is installed
// (`sift models pull NAME`); otherwise an error saying which.
Result<std::string> resolve_model(const std::string& model);

}  // namespace sift::cli
