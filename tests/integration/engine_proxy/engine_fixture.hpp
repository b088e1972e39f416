// What the engine proxy's integration tests share: a real dockerd in fresh namespaces where host
// "/" also shows at <T>/mnt/host and <T>/hidden is covered, and proxies in front of it.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "berth/engine_proxy/engine_proxy.hpp"
#include "dockerd_sandbox.hpp"
#include "shell.hpp"
#include "temp_dir.hpp"

namespace berth::test {

inline constexpr const char* kImage = "berth-test/busybox";

// One dockerd in fresh namespaces, where host "/" is also visible at <T>/mnt/host and the
// directory <T>/hidden is covered by a tmpfs: so a bind of <T>/hidden/... only works when the
// proxy translates it to <T>/mnt/host/<T>/hidden/...
struct Engine {
  TempDir tmp{"bep"};
  std::filesystem::path dir = tmp.path();
  std::filesystem::path mnt = dir / "mnt/host";
  std::filesystem::path hidden = dir / "hidden";
  std::filesystem::path config = dir / "dockercfg";
  std::unique_ptr<DockerdSandbox> dockerd;

  Engine();
  // The docker CLI against `socket`, with a private config dir; `timeout` guards against hangs.
  ShellResult docker(const std::string& socket, const std::string& args, const std::string& stdin_cmd = "") const;
  // `docker import`s a busybox root filesystem as kImage through `socket`; throws on failure.
  void import_busybox(const std::string& socket) const;
  // A proxy translating host "/" to <T>/mnt/host, as berthd's translates "/" to /mnt/host.
  engine_proxy::PathTranslator translator() const { return engine_proxy::PathTranslator("/", mnt.string()); }
};

// A connected unix stream socket to `path`, or -1.
int dial(const std::string& path);

engine_proxy::EngineProxyOptions proxy_options(const std::string& socket, const std::string& upstream,
                                               engine_proxy::PathTranslator translator);

// Connections close asynchronously after a client exits; waits (bounded) until none is open.
void wait_idle(const engine_proxy::EngineProxy& proxy);

}  // namespace berth::test
