// berthctl's command tree on CLI11. Each command group lives in its own file under commands/
// and adds its commands through Commands: the options a command parses and the help it prints
// come from the same declarations.
#pragma once

#include <CLI/CLI.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>

#include "berth/api/client.hpp"

namespace berth::cli {

enum ExitCode : int { kOk = 0, kDaemonError = 1, kUsage = 2, kUnreachable = 3 };

// The daemon answered with an error, or the command failed: exit code 1 with the message.
class DaemonError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a command runs with once the command line parsed: the daemon's client and where to print.
class Session {
 public:
  Session(const std::filesystem::path& socket, bool json_output, std::ostream& out, std::ostream& err);

  bool json_output() const { return json_output_; }
  api::Client& client() { return client_; }
  // A request whose error status becomes a DaemonError with the daemon's message.
  nlohmann::json call(std::string_view method, const std::string& target,
                      const std::optional<nlohmann::json>& body = std::nullopt);
  // With --json: prints the daemon's document as is and returns true.
  bool print_json(const nlohmann::json& body);

  std::ostream& out;
  std::ostream& err;

 private:
  bool json_output_;
  api::Client client_;
};

// What a command does after its command line parsed; returns the exit code.
using Action = std::function<int(Session&)>;

// Builds the tree: groups ("plugins") hold commands ("plugins ls"); a command has an action.
// Every node also takes the global options (--socket, --json), so they may stand anywhere.
class Commands {
 public:
  explicit Commands(CLI::App& root);

  CLI::App& root() { return root_; }
  // A group of commands. `footer` is printed after the generated part of its help (examples).
  CLI::App* group(CLI::App& parent, const std::string& name, const std::string& description, const std::string& footer);
  // A command that runs `action`. Add its positionals and options to the returned app.
  CLI::App* command(CLI::App& parent, const std::string& name, const std::string& description,
                    const std::string& footer, Action action);

  // After parsing: the action of the command that was given (nullptr for a group without one).
  const Action* action_of(const CLI::App* app) const;
  const std::string& socket() const { return socket_; }
  bool json_output() const { return json_; }

 private:
  void add_global_options(CLI::App& app);

  CLI::App& root_;
  std::string socket_;
  bool json_ = false;
  std::map<const CLI::App*, Action> actions_;
};

// Option value checks, as CLI11 validators (a failure is a usage error naming the option).
CLI::Validator non_negative_count();  // 0, 1, 2, ... (fits a long long)

// berthctl's help layout: usage lines built from the declared positionals, commands listed with
// their arguments, one blank line between option groups, positionals without a type.
class HelpFormatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App* app, std::string name) const override;
  std::string make_subcommand(const CLI::App* sub) const override;
  std::string make_help(const CLI::App* app, std::string name, CLI::AppFormatMode mode) const override;
  std::string make_option_opts(const CLI::Option* opt) const override;
};

// args: argv without the program name.
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace berth::cli
