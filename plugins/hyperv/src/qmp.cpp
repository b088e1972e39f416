#include "qmp.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "sys_util.hpp"

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace berth::hyperv {

namespace {

// Reads lines until one is a JSON object with key `want` (events are skipped).
bool read_until(int fd, std::string& buf, const char* want, Clock::time_point deadline) {
  for (;;) {
    for (auto nl = buf.find('\n'); nl != std::string::npos; nl = buf.find('\n')) {
      const json j = json::parse(buf.substr(0, nl), nullptr, false);
      buf.erase(0, nl + 1);
      if (j.is_object() && j.contains(want)) return true;
      if (j.is_object() && j.contains("error")) return false;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char tmp[4096];
    const ssize_t n = ::read(fd, tmp, sizeof tmp);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
  }
}

bool send_line(int fd, const json& j) {
  const std::string s = j.dump() + "\n";
  return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
}

}  // namespace

bool qmp_command(const std::filesystem::path& socket, const json& command, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.string().size() >= sizeof addr.sun_path) return false;
  std::strncpy(addr.sun_path, socket.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return false;
  std::string buf;
  if (!read_until(fd.get(), buf, "QMP", deadline)) return false;
  if (!send_line(fd.get(), {{"execute", "qmp_capabilities"}}) || !read_until(fd.get(), buf, "return", deadline))
    return false;
  return send_line(fd.get(), command) && read_until(fd.get(), buf, "return", deadline);
}

json qmp_ctrl_alt_delete() {
  return {{"execute", "send-key"},
          {"arguments",
           {{"keys",
             {{{"type", "qcode"}, {"data", "ctrl"}},
              {{"type", "qcode"}, {"data", "alt"}},
              {{"type", "qcode"}, {"data", "delete"}}}}}}};
}

}  // namespace berth::hyperv
