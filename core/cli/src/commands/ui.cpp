// berthctl ui [--open]: a one-time link to the web page berthd serves on its loopback TCP
// listener. The code in it comes over the unix socket, so whoever may use berthctl may open the
// page; the link signs one browser in, once, within a minute.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <vector>

#include "../output.hpp"
#include "commands.hpp"

extern char** environ;

namespace berth::cli {

using nlohmann::json;

namespace {

// $BROWSER if set, else xdg-open; started without a shell, so the URL is one argument whatever
// it holds. Returns an error message, or empty.
std::string open_in_browser(const std::string& url) {
  const char* browser = std::getenv("BROWSER");
  const std::string program = browser != nullptr && *browser != '\0' ? browser : "xdg-open";
  std::vector<char*> argv = {const_cast<char*>(program.c_str()), const_cast<char*>(url.c_str()), nullptr};
  pid_t pid = 0;
  if (::posix_spawnp(&pid, program.c_str(), nullptr, nullptr, argv.data(), environ) != 0)
    return "cannot start " + program + " (set BROWSER to your browser); open the link yourself";
  int status = 0;
  // xdg-open hands over to the browser and returns; a browser started directly keeps running.
  if (::waitpid(pid, &status, WNOHANG) == pid && WIFEXITED(status) && WEXITSTATUS(status) != 0)
    return program + " failed (exit " + std::to_string(WEXITSTATUS(status)) + "); open the link yourself";
  return {};
}

}  // namespace

void add_ui_commands(Commands& commands) {
  auto open = std::make_shared<bool>(false);
  CLI::App* ui =
      commands.command(commands.root(), "ui", "a one-time link to the web page (settings, engine state)",
                       "Prints a link to the web page berthd serves on its loopback TCP listener (admin config\n"
                       "api.tcp). The link signs one browser in: it works once, within a minute, and the browser\n"
                       "then holds a session cookie for the working day. Run it again for another browser.\n\n"
                       "Examples:\n  berthctl ui\n  berthctl ui --open\n",
                       [open](Session& s) {
                         json body = s.call("POST", "/v1/ui/login-code");
                         if (s.print_json(body)) return int{kOk};
                         const std::string url = field(body, "url");
                         s.out << url << '\n';
                         if (*open) {
                           if (const std::string failure = open_in_browser(url); !failure.empty())
                             s.err << "berthctl: " << failure << '\n';
                         }
                         return int{kOk};
                       });
  ui->add_flag("--open", *open, "also open the link in the browser ($BROWSER, else xdg-open)");
}

}  // namespace berth::cli
