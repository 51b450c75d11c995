// Command-line spelling shared by outreachd and the project's other tools: absl flag names are
// identifiers, while the documented spelling uses dashes (--time-zone, --preload-tasks). Pure;
// thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

namespace outreach::server {

// Returns argv with dashes in flag NAMES rewritten to underscores (never in values, never after
// "--"), ready for absl::ParseCommandLine.
inline std::vector<std::string> NormalizeFlagNames(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (std::size_t i = 1; i < args.size(); ++i) {
    std::string& arg = args[i];
    if (arg == "--") break;
    if (arg.size() < 3 || arg[0] != '-') continue;
    const std::size_t start = arg[1] == '-' ? 2 : 1;
    const std::size_t end = std::min(arg.find('='), arg.size());
    for (std::size_t j = start; j < end; ++j) {
      if (arg[j] == '-') arg[j] = '_';
    }
  }
  return args;
}

}  // namespace outreach::server
