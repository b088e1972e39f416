#include "app.hpp"

#include <charconv>
#include <cstdlib>
#include <sstream>

#include "commands/commands.hpp"

namespace berth::cli {

using nlohmann::json;

// ---- Session -----------------------------------------------------------------------------

Session::Session(const std::filesystem::path& socket, bool json_output, std::ostream& out_stream,
                 std::ostream& err_stream)
    : out(out_stream), err(err_stream), json_output_(json_output), client_(api::ClientEndpoint::unix_path(socket)) {}

json Session::call(std::string_view method, const std::string& target, const std::optional<json>& body) {
  api::Result result = client_.request(method, target, body);
  if (!result.ok()) throw DaemonError(result.error_message());
  return result.body;
}

bool Session::print_json(const json& body) {
  if (!json_output_) return false;
  out << body.dump(2) << '\n';
  return true;
}

// ---- the command tree ------------------------------------------------------------------------

Commands::Commands(CLI::App& root) : root_(root) {
  root_.formatter(std::make_shared<HelpFormatter>());
  root_.require_subcommand(0, 1);  // inherited: one command per group
  add_global_options(root_);
}

void Commands::add_global_options(CLI::App& app) {
  app.add_option("--socket", socket_, "the daemon's socket (default: $BERTH_SOCKET, else /run/berth/berth.sock)")
      ->type_name("PATH")
      ->group("Global options");
  app.add_flag("--json", json_, "print the daemon's JSON instead of tables")->group("Global options");
}

CLI::App* Commands::group(CLI::App& parent, const std::string& name, const std::string& description,
                          const std::string& footer) {
  CLI::App* app = parent.add_subcommand(name, description);
  app->group("Commands");
  app->footer(footer);
  add_global_options(*app);
  return app;
}

CLI::App* Commands::command(CLI::App& parent, const std::string& name, const std::string& description,
                            const std::string& footer, Action action) {
  CLI::App* app = group(parent, name, description, footer);
  actions_[app] = std::move(action);
  return app;
}

const Action* Commands::action_of(const CLI::App* app) const {
  auto it = actions_.find(app);
  return it == actions_.end() ? nullptr : &it->second;
}

CLI::Validator non_negative_count() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        long long value = 0;
        auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (ec != std::errc{} || ptr != text.data() + text.size() || value < 0)
          return "needs a non-negative whole number, not '" + text + "'";
        return {};
      },
      "");
}

// ---- help layout -----------------------------------------------------------------------------

namespace {

std::vector<const CLI::App*> named_subcommands(const CLI::App* app) {
  return app->get_subcommands([](const CLI::App* sub) { return !sub->get_name().empty(); });
}

// " ID [KEY]": the command's positionals as its usage shows them.
std::string positional_usage(const CLI::Formatter& f, const CLI::App* app) {
  std::string out;
  for (const CLI::Option* opt : app->get_options([](const CLI::Option* o) { return o->get_positional(); }))
    out += " " + f.make_option_usage(opt);
  return out;
}

void usage_lines(const CLI::Formatter& f, const CLI::App* app, const std::string& name,
                 std::vector<std::string>& lines) {
  const auto subs = named_subcommands(app);
  if (subs.empty()) {
    lines.push_back(name + positional_usage(f, app) + " [OPTIONS]");
    return;
  }
  for (const CLI::App* sub : subs) usage_lines(f, sub, name + " " + sub->get_name(), lines);
}

}  // namespace

// A command: "Usage: berthctl plugins show ID [OPTIONS]"; a group: one such line per command in
// it; berthctl itself: "Usage: berthctl [OPTIONS] COMMAND [ARGS...]".
std::string HelpFormatter::make_usage(const CLI::App* app, std::string name) const {
  if (app->get_parent() == nullptr) return "Usage: " + name + " [OPTIONS] COMMAND [ARGS...]\n";
  std::vector<std::string> lines;
  usage_lines(*this, app, name, lines);
  std::string out = "Usage: ";
  for (std::size_t i = 0; i < lines.size(); ++i) out += (i == 0 ? "" : "       ") + lines[i] + "\n";
  return out;
}

// A command with its arguments ("get ID [KEY]"), a group with its commands ("pack ls|build|use").
std::string HelpFormatter::make_subcommand(const CLI::App* sub) const {
  std::string left = sub->get_display_name(true);
  const auto subs = named_subcommands(sub);
  if (subs.empty()) {
    left += positional_usage(*this, sub);
  } else {
    for (std::size_t i = 0; i < subs.size(); ++i) left += (i == 0 ? " " : "|") + subs[i]->get_name();
  }
  std::stringstream out;
  CLI::detail::format_help(out, left, sub->get_description(), get_column_width());
  return out.str();
}

// CLI11's layout (description, usage, positionals, options by group, commands, footer), with the
// option groups ("Options", "Global options") one blank line apart instead of two.
std::string HelpFormatter::make_help(const CLI::App* app, std::string name, CLI::AppFormatMode mode) const {
  std::string groups;
  for (const std::string& group : app->get_groups()) {
    const auto opts = app->get_options(
        [&group](const CLI::Option* opt) { return opt->get_group() == group && opt->nonpositional(); });
    if (!group.empty() && !opts.empty()) groups += make_group(group, false, opts);
  }
  return make_description(app) + make_usage(app, name) + make_positionals(app) + groups + make_subcommands(app, mode) +
         "\n" + make_footer(app);
}

// A positional's name says what it is ("ID"): no type, only whether it repeats and is needed.
std::string HelpFormatter::make_option_opts(const CLI::Option* opt) const {
  if (!opt->get_positional()) return CLI::Formatter::make_option_opts(opt);
  std::string out;
  if (opt->get_expected_max() >= CLI::detail::expected_max_vector_size) out += " ...";
  if (opt->get_required()) out += " REQUIRED";
  return out;
}

// ---- running ---------------------------------------------------------------------------------

namespace {

// A usage problem an action finds itself (after parsing): exit code 2.
class UsageError : public std::runtime_error {
 public:
  UsageError(const std::string& message, std::string command)
      : std::runtime_error(message), command_(std::move(command)) {}
  const std::string& command() const { return command_; }

 private:
  std::string command_;
};

// The commands given, from berthctl itself down to the deepest one.
std::vector<const CLI::App*> given_chain(const CLI::App& root) {
  std::vector<const CLI::App*> chain{&root};
  while (!chain.back()->get_subcommands().empty()) chain.push_back(chain.back()->get_subcommands().front());
  return chain;
}

// "plugins show": the command words of the chain down to `depth` (empty for berthctl itself).
std::string words_of(const std::vector<const CLI::App*>& chain, std::size_t depth) {
  std::string words;
  for (std::size_t i = 1; i <= depth && i < chain.size(); ++i) words += (i == 1 ? "" : " ") + chain[i]->get_name();
  return words;
}

std::string path_of(const std::vector<const CLI::App*>& chain, std::size_t depth) {
  const std::string words = words_of(chain, depth);
  return words.empty() ? "berthctl" : "berthctl " + words;
}

std::string command_names(const CLI::App* app) {
  std::string out;
  for (const CLI::App* sub : named_subcommands(app)) out += (out.empty() ? "" : ", ") + sub->get_name();
  return out;
}

std::string help_text(const CLI::App* app, const std::string& path) {
  return app->get_formatter()->make_help(app, path, CLI::AppFormatMode::Normal);
}

int print_usage_error(std::ostream& err, const std::string& message, const std::string& path) {
  err << "berthctl: " << message << '\n' << "Run '" << path << " --help' for usage.\n";
  return kUsage;
}

// A command line CLI11 refused, said in terms of the command it was meant for.
int usage_error(const CLI::App& root, const CLI::ParseError& e, std::ostream& err) {
  const auto chain = given_chain(root);
  if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
    // CLI11 checks for leftovers from berthctl down; the first command with some is the one.
    for (std::size_t depth = 0; depth < chain.size(); ++depth) {
      const auto rest = chain[depth]->remaining(false);
      if (rest.empty()) continue;
      const std::string path = path_of(chain, depth);
      const std::string first = rest.front();
      if (first.size() > 1 && first[0] == '-')
        return print_usage_error(err, "unknown option " + first.substr(0, first.find('=')) + " for '" + path + "'",
                                 path);
      if (!named_subcommands(chain[depth]).empty()) {
        if (depth == 0) return print_usage_error(err, "unknown command '" + first + "'", path);
        return print_usage_error(err,
                                 "unknown command '" + words_of(chain, depth) + " " + first +
                                     "' (one of: " + command_names(chain[depth]) + ")",
                                 path);
      }
      return print_usage_error(err, "unexpected argument '" + first + "' for '" + path + "'", path);
    }
  }
  const std::string words = words_of(chain, chain.size() - 1);
  return print_usage_error(err, (words.empty() ? "" : words + ": ") + e.what(), path_of(chain, chain.size() - 1));
}

std::filesystem::path default_socket() {
  const char* env = std::getenv("BERTH_SOCKET");
  return env != nullptr && *env != '\0' ? env : "/run/berth/berth.sock";
}

// `berthctl help [COMMAND...]`: the same text as `berthctl [COMMAND...] --help`.
int print_help_of(const CLI::App& root, const std::vector<std::string>& topic, Session& s) {
  const CLI::App* app = &root;
  std::string path = "berthctl";
  std::string given;
  for (const std::string& word : topic) {
    given += (given.empty() ? "" : " ") + word;
    const CLI::App* next = nullptr;
    for (const CLI::App* sub : named_subcommands(app))
      if (sub->check_name(word)) next = sub;
    if (next == nullptr) throw UsageError("no help for unknown command '" + given + "'", "berthctl");
    app = next;
    path += " " + app->get_name();
  }
  s.out << help_text(app, path);
  return kOk;
}

void add_help_command(Commands& commands) {
  auto topic = std::make_shared<std::vector<std::string>>();
  const CLI::App& root = commands.root();
  commands
      .command(commands.root(), "help", "the help of berthctl or of one of its commands",
               "Examples:\n  berthctl help\n  berthctl help settings set\n",
               [&root, topic](Session& s) { return print_help_of(root, *topic, s); })
      ->add_option("COMMAND", *topic, "a command or group, e.g. settings set");
}

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  CLI::App app("berthctl - control berthd, the berth daemon", "berthctl");
  app.footer(
      "Exit codes: 0 ok, 1 the daemon answered with an error, 2 usage error, 3 daemon unreachable.\n"
      "`berthctl COMMAND --help` shows a command's help.\n\n"
      "Example:\n  berthctl plugins ls\n");
  Commands commands(app);
  for (auto* add :
       {add_status_commands, add_plugins_commands, add_settings_commands, add_audit_commands, add_events_commands,
        add_engine_commands, add_pack_commands, add_backend_commands, add_ports_commands, add_logs_commands,
        add_diagnose_commands, add_proxy_commands, add_ui_commands, add_k8s_commands})
    add(commands);
  add_help_command(commands);

  try {
    app.parse(std::vector<std::string>(args.rbegin(), args.rend()));  // CLI11 takes them last first
  } catch (const CLI::CallForHelp&) {
    out << app.help();  // the help of the deepest command given
    return kOk;
  } catch (const CLI::ParseError& e) {
    return usage_error(app, e, err);
  }

  const auto chain = given_chain(app);
  const Action* action = commands.action_of(chain.back());
  if (action == nullptr) {
    if (chain.size() == 1) {
      err << help_text(&app, "berthctl");
      return kUsage;
    }
    const std::string path = path_of(chain, chain.size() - 1);
    return print_usage_error(err, "missing command after '" + path + "': one of " + command_names(chain.back()), path);
  }

  try {
    Session session(commands.socket().empty() ? default_socket() : std::filesystem::path(commands.socket()),
                    commands.json_output(), out, err);
    return (*action)(session);
  } catch (const UsageError& e) {
    return print_usage_error(err, e.what(), e.command());
  } catch (const api::ConnectError& e) {
    err << "berthctl: " << e.what() << '\n';
    return kUnreachable;
  } catch (const std::exception& e) {  // DaemonError, api::ProtocolError, anything else
    err << "berthctl: " << e.what() << '\n';
    return kDaemonError;
  }
}

}  // namespace berth::cli
