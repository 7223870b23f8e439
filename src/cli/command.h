// The command registry. Each cli/cmd_<name>.cpp declares its subcommand and registers it:
//
//   namespace { void add_synth(CLI::App& app) { auto* c = app.add_subcommand("synth", "..."); ... }
//   } GG_REGISTER_COMMAND(synth, 10, add_synth);
//
// `order` sets the position in `gliomagrade --help` (pipeline order). Callbacks throw gg::Error
// on failure; only main() catches.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace gg::cli {

struct CommandEntry {
  std::string name;
  int order;
  std::function<void(CLI::App&)> add;
};

std::vector<CommandEntry>& command_registry();

struct CommandRegistration {
  CommandRegistration(std::string name, int order, std::function<void(CLI::App&)> add) {
    command_registry().push_back({std::move(name), order, std::move(add)});
  }
};

// Options every command shares, set by main() before the callback runs.
struct GlobalOptions {
  bool verbose = false;
  bool quiet = false;  // no progress lines
  int threads = 0;     // 0: all cores
};
GlobalOptions& global_options();

}  // namespace gg::cli

#define GG_REGISTER_COMMAND(name, order, fn) \
  static ::gg::cli::CommandRegistration gg_command_registration_##name(#name, order, fn)
