// The chassis subcommands. Each registers its options on the CLI11 app and runs after parsing;
// the work itself lives in the engine library, so these stay thin.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>

namespace chassis::cli {

// Each returns the function to run when its subcommand was chosen (returns the exit code).
std::function<int()> add_run(CLI::App& app);
std::function<int()> add_tokenize(CLI::App& app);
std::function<int()> add_show(CLI::App& app);
std::function<int()> add_bench(CLI::App& app);
std::function<int()> add_template(CLI::App& app);
std::function<int()> add_quantize(CLI::App& app);
std::function<int()> add_serve(CLI::App& app);
std::function<int()> add_pull(CLI::App& app);
std::function<int()> add_list(CLI::App& app);
std::function<int()> add_rm(CLI::App& app);
std::function<int()> add_convert(CLI::App& app);

}  // namespace chassis::cli
