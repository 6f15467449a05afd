// Sub-command registry for the `rhip` binary. Each src/cli/cmd_*.cc registers
// its sub-command with RHIP_COMMAND so that adding one touches no other file.
// A sub-command's Setup adds its flags to the CLI11 sub-app (with an example in
// its footer) and returns the function that runs it; that function returns the
// process exit code. Sub-commands stay thin: parse flags, call the library.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace rhip::cli {

using RunFn = std::function<int()>;
using SetupFn = std::function<RunFn(CLI::App& sub)>;

struct CommandSpec {
  std::string name;
  std::string description;
  SetupFn setup;
};

std::vector<CommandSpec>& Commands();

struct CommandRegistrar {
  CommandRegistrar(std::string name, std::string description, SetupFn setup) {
    Commands().push_back({std::move(name), std::move(description), std::move(setup)});
  }
};

// Prints "rhip <cmd>: error: <message>" to stderr and returns the exit code 1.
int Fail(const std::string& command, const std::string& message);

}  // namespace rhip::cli

#define RHIP_COMMAND(ident, name, description, setup) \
  static ::rhip::cli::CommandRegistrar rhip_command_##ident(name, description, setup)
