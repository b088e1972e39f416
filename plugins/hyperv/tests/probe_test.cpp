// probe() of the hyperv backend against the host profiles in tests/fixtures/hosts.
#include "probe.hpp"

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "temp_dir.hpp"

using nlohmann::json;

namespace {

json profile(const std::string& name) {
  std::ifstream in(std::string(HYPERV_HOSTS_DIR) + "/" + name);
  REQUIRE(in);
  return json::parse(in);
}

}  // namespace

TEST_CASE("Windows 10 1809 with Hyper-V and no WSL 2: hyperv is supported, below wsl2's priority") {
  const json r = berth::hyperv::probe_host(profile("windows-10-1809-hyperv-no-wsl2.json"), {});
  CHECK(r["supported"] == true);
  CHECK(r["reason"].get<std::string>().find("Hyper-V is enabled") != std::string::npos);
  CHECK(r["priority"] == 50);
}

TEST_CASE("Windows 11 with WSL 2: hyperv is supported too (wsl2 wins on priority)") {
  const json r = berth::hyperv::probe_host(profile("windows-11-wsl2.json"), {});
  CHECK(r["supported"] == true);
  CHECK(r["priority"].get<int>() < 100);
}

TEST_CASE("Windows without Hyper-V: not supported, and the reason says so") {
  json facts = profile("windows-10-1809-hyperv-no-wsl2.json");
  facts["windows"]["hyperv"] = false;
  const json r = berth::hyperv::probe_host(facts, {});
  CHECK(r["supported"] == false);
  CHECK(r["reason"].get<std::string>().find("Hyper-V is not enabled") != std::string::npos);
  CHECK(r["reason"].get<std::string>().find("17763") != std::string::npos);
}

TEST_CASE("Linux without namespaces or user namespaces: the VM does not need them") {
  for (const char* name : {"linux-no-namespaces.json", "linux-no-userns.json"}) {
    json facts = profile(name);
    facts["qemu"] = "/usr/bin/qemu-system-x86_64";
    facts["kvm"] = false;
    const json r = berth::hyperv::probe_host(facts, {});
    INFO(name << ": " << r.dump());
    CHECK(r["supported"] == true);
    CHECK(r["reason"] == "QEMU with TCG (no /dev/kvm): slow but works");
    facts["kvm"] = true;
    CHECK(berth::hyperv::probe_host(facts, {})["reason"] == "QEMU with KVM");
  }
}

TEST_CASE("Linux without QEMU: not supported, naming the package") {
  json facts = profile("linux-no-userns.json");
  facts["qemu"] = nullptr;
  const json r = berth::hyperv::probe_host(facts, {});
  CHECK(r["supported"] == false);
  CHECK(r["reason"].get<std::string>().find("qemu-system-x86") != std::string::npos);
  CHECK(r["priority"] == 0);
}
