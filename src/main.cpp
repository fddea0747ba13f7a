#include "cli/cli.h"

int main(int argc, char** argv) {
    return sift::cli::cli_main(argc, argv);
}
