// rhip: the regional health information platform's one binary.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>

#include "cli/command.h"

namespace rhip::cli {

std::vector<CommandSpec>& Commands() {
  static std::vector<CommandSpec> commands;
  return commands;
}

int Fail(const std::string& command, const std::string& message) {
  std::cerr << "rhip " << command << ": error: " << message << "\n";
  return 1;
}

}  // namespace rhip::cli

int main(int argc, char** argv) {
  CLI::App app{"rhip — 区域全民健康信息平台 (regional health information platform)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "rhip 0.1.0");
  app.footer("Example:\n  rhip demo --data data/demo        # generate, import and serve a demo region\n"
             "  rhip <command> --help              # each command's flags and an example");
  auto& commands = rhip::cli::Commands();
  std::sort(commands.begin(), commands.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  std::map<CLI::App*, rhip::cli::RunFn> runs;
  for (auto& spec : commands) {
    CLI::App* sub = app.add_subcommand(spec.name, spec.description);
    runs[sub] = spec.setup(*sub);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto& [sub, run] : runs) {
    if (sub->parsed()) return run();
  }
  return 1;
}
