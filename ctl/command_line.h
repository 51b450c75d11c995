// A small command-line parser for outreachctl's subcommands: each has its own flags, spelled
// `--name value` or `--name=value`, and `--help`. Hand-written rather than absl flags because
// absl's flags are process-global, while each subcommand accepts a different set.
//
// Thread-compatible value types; no global state.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace outreach::ctl {

struct FlagSpec {
  std::string name;      // without the leading "--"
  std::string value;     // what the value is, for the help text ("DIR", "N", "HEX")
  std::string help;
  bool required = false;
};

struct CommandSpec {
  std::string name;
  std::string summary;      // one line, for the top-level help
  std::string description;  // a paragraph, for the command's --help
  std::vector<FlagSpec> flags;
};

struct ParsedFlags {
  bool help = false;  // --help or -h was given: print Help() and exit 0
  std::map<std::string, std::string> values;

  std::optional<std::string> Get(absl::string_view name) const;
};

// Parses args (after the subcommand name). INVALID_ARGUMENT saying what is wrong: an unknown
// flag, a missing value, a repeated flag, a positional argument, or a missing required flag
// (not checked when --help is given).
absl::StatusOr<ParsedFlags> ParseFlags(const CommandSpec& spec,
                                       const std::vector<std::string>& args);

// "usage: outreachctl NAME --flag VALUE ...", the description and one line per flag.
std::string Help(const CommandSpec& spec);

}  // namespace outreach::ctl
