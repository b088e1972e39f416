#include "args.hpp"

#include <charconv>

namespace berth::cli {

ParsedArgs parse_args(const std::vector<std::string>& args, const OptionSpec& spec) {
  ParsedArgs out;
  bool options_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (options_done || arg.size() < 2 || arg[0] != '-') {
      out.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    std::string name = arg;
    std::string inline_value;
    bool has_inline = false;
    if (auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
      has_inline = true;
    }
    if (auto alias = spec.aliases.find(name); alias != spec.aliases.end()) name = alias->second;
    if (spec.flags.count(name)) {
      if (has_inline) throw UsageError("option " + name + " takes no value");
      out.flags.insert(name);
    } else if (spec.with_value.count(name)) {
      if (has_inline) {
        out.values[name] = inline_value;
      } else if (i + 1 < args.size()) {
        out.values[name] = args[++i];
      } else {
        throw UsageError("option " + name + " needs a value");
      }
    } else {
      throw UsageError("unknown option " + arg);
    }
  }
  return out;
}

long long parse_count(const std::string& option, const std::string& text) {
  long long value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || ptr != text.data() + text.size() || value < 0) {
    throw UsageError(option + " needs a non-negative number, not '" + text + "'");
  }
  return value;
}

}  // namespace berth::cli
