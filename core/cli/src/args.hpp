// berthctl's command-line parsing: options may appear anywhere, "--name value" or "--name=value",
// "--" ends options. Small on purpose: no third-party parser.
#pragma once

#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace berth::cli {

// Bad command line: exit code 2, with the message and a pointer to --help.
class UsageError : public std::runtime_error {
 public:
  UsageError(const std::string& message, std::string command = {})
      : std::runtime_error(message), command_(std::move(command)) {}
  const std::string& command() const { return command_; }

 private:
  std::string command_;
};

struct ParsedArgs {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;  // "--socket" -> "/x"
  std::set<std::string> flags;                // "--json", "--help"

  bool flag(const std::string& name) const { return flags.count(name) != 0; }
  const std::string* value(const std::string& name) const {
    auto it = values.find(name);
    return it == values.end() ? nullptr : &it->second;
  }
};

struct OptionSpec {
  std::set<std::string> with_value;  // e.g. {"--socket", "--plugin"}
  std::set<std::string> flags;       // e.g. {"--json", "--help"}
  std::map<std::string, std::string> aliases;  // "-h" -> "--help"
};

// Throws UsageError for an unknown option or a missing value.
ParsedArgs parse_args(const std::vector<std::string>& args, const OptionSpec& spec);

// Parses a non-negative integer option value; throws UsageError naming the option.
long long parse_count(const std::string& option, const std::string& text);

}  // namespace berth::cli
