#include "ctl/command_line.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace outreach::ctl {
namespace {

const FlagSpec* FindFlag(const CommandSpec& spec, absl::string_view name) {
  for (const FlagSpec& flag : spec.flags) {
    if (flag.name == name) return &flag;
  }
  return nullptr;
}

}  // namespace

std::optional<std::string> ParsedFlags::Get(absl::string_view name) const {
  auto it = values.find(std::string(name));
  if (it == values.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<ParsedFlags> ParseFlags(const CommandSpec& spec,
                                       const std::vector<std::string>& args) {
  ParsedFlags parsed;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      parsed.help = true;
      continue;
    }
    if (!absl::StartsWith(arg, "--") || arg.size() == 2) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument \"", arg, "\""));
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (const std::size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name.resize(eq);
    }
    const FlagSpec* flag = FindFlag(spec, name);
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
    if (!value.has_value()) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value (", flag->value, ")"));
      }
      value = args[++i];
    }
    if (value->empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " must not be empty"));
    }
    if (!parsed.values.emplace(name, *std::move(value)).second) {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " is given more than once"));
    }
  }
  if (parsed.help) return parsed;
  for (const FlagSpec& flag : spec.flags) {
    if (flag.required && !parsed.values.contains(flag.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag.name, " ", flag.value, " is required"));
    }
  }
  return parsed;
}

std::string Help(const CommandSpec& spec) {
  std::string out = absl::StrCat("usage: outreachctl ", spec.name);
  for (const FlagSpec& flag : spec.flags) {
    absl::StrAppend(&out, " ", flag.required ? "" : "[", "--", flag.name, " ", flag.value,
                    flag.required ? "" : "]");
  }
  absl::StrAppend(&out, "\n\n", spec.description, "\n\nflags:\n");
  for (const FlagSpec& flag : spec.flags) {
    std::string left = absl::StrCat("  --", flag.name, " ", flag.value);
    if (left.size() < 24) left.resize(24, ' ');
    absl::StrAppend(&out, left, " ", flag.help, flag.required ? " (required)" : "", "\n");
  }
  absl::StrAppend(&out, "  --help                 this text\n");
  return out;
}

}  // namespace outreach::ctl
