// probe() of the hyperv backend against the host profiles in tests/fixtures/hosts,
// and the accelerator decision (KVM or TCG) from host facts and the boot check's cache.
#include "probe.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "accel.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using berth::hyperv::AccelChooser;
using berth::hyperv::BootCheck;
using nlohmann::json;

namespace {

// A kernel cache with a (fake) unpacked kernel: what find_unpacked_kernel() accepts.
fs::path fake_kernel_cache(const berth::test::TempDir& dir, const std::string& version) {
  const fs::path cache = dir / "kernels";
  fs::create_directories(cache / version / "boot");
  std::ofstream(cache / version / "boot" / ("vmlinuz-" + version)) << "not a kernel\n";
  std::ofstream(cache / version / ".complete") << version << "\n";
  return cache;
}

json profile(const std::string& name) {
  std::ifstream in(std::string(HYPERV_HOSTS_DIR) + "/" + name);
  REQUIRE(in);
  return json::parse(in);
}

}  // namespace

TEST_CASE("Windows 10 1809 with Hyper-V and no WSL 2: hyperv is supported, below wsl2's priority") {
  AccelChooser accel;
  const json r = berth::hyperv::probe_host(profile("windows-10-1809-hyperv-no-wsl2.json"), {}, accel);
  CHECK(r["supported"] == true);
  CHECK(r["reason"].get<std::string>().find("Hyper-V is enabled") != std::string::npos);
  CHECK(r["priority"] == 50);
  CHECK(r["accelerator"] == "hyper-v");
}

TEST_CASE("Windows 11 with WSL 2: hyperv is supported too (wsl2 wins on priority)") {
  AccelChooser accel;
  const json r = berth::hyperv::probe_host(profile("windows-11-wsl2.json"), {}, accel);
  CHECK(r["supported"] == true);
  CHECK(r["priority"].get<int>() < 100);
}

TEST_CASE("Windows without Hyper-V: not supported, and the reason says so") {
  json facts = profile("windows-10-1809-hyperv-no-wsl2.json");
  facts["windows"]["hyperv"] = false;
  AccelChooser accel;
  const json r = berth::hyperv::probe_host(facts, {}, accel);
  CHECK(r["supported"] == false);
  CHECK(r["reason"].get<std::string>().find("Hyper-V is not enabled") != std::string::npos);
  CHECK(r["reason"].get<std::string>().find("17763") != std::string::npos);
}

TEST_CASE("Linux without namespaces or user namespaces: the VM does not need them") {
  for (const char* name : {"linux-no-namespaces.json", "linux-no-userns.json"}) {
    json facts = profile(name);
    facts["qemu"] = "/usr/bin/qemu-system-x86_64";
    facts["kvm"] = false;
    AccelChooser accel;
    const json r = berth::hyperv::probe_host(facts, {}, accel);
    INFO(name << ": " << r.dump());
    CHECK(r["supported"] == true);
    CHECK(r["accelerator"] == "tcg");
    CHECK(r["reason"] == "QEMU with TCG: no usable /dev/kvm (slow but works)");
    facts["kvm"] = true;
    facts["kvm_guest"] = true;
    const json kvm = berth::hyperv::probe_host(facts, {}, accel);
    CHECK(kvm["accelerator"] == "kvm");
    CHECK(kvm["reason"] == "QEMU with KVM (host facts: a guest boots under KVM)");
  }
}

TEST_CASE("Linux without QEMU: not supported, naming the package") {
  json facts = profile("linux-no-userns.json");
  facts["qemu"] = nullptr;
  AccelChooser accel;
  const json r = berth::hyperv::probe_host(facts, {}, accel);
  CHECK(r["supported"] == false);
  CHECK(r["reason"].get<std::string>().find("qemu-system-x86") != std::string::npos);
  CHECK(r["priority"] == 0);
}

TEST_CASE("accelerator: a /dev/kvm that opens but boots no guest (host facts) means TCG, and the reason says why") {
  json facts = profile("linux-no-userns.json");
  facts["qemu"] = "/usr/bin/qemu-system-x86_64";
  facts["kvm"] = true;
  facts["kvm_guest"] = false;
  AccelChooser accel;
  const json r = berth::hyperv::probe_host(facts, {}, accel);
  INFO(r.dump());
  CHECK(r["supported"] == true);
  CHECK(r["accelerator"] == "tcg");
  CHECK_THAT(r["reason"].get<std::string>(),
             Catch::StartsWith("QEMU with TCG: /dev/kvm opens but a guest does not boot under KVM"));
  // "kvm": false wins over anything else: no /dev/kvm, no check.
  facts["kvm"] = false;
  facts["kvm_guest"] = true;
  CHECK(berth::hyperv::probe_host(facts, {}, accel)["accelerator"] == "tcg");
}

TEST_CASE("accelerator: the boot check's outcome in words") {
  using berth::hyperv::choice_from;
  const auto hang = choice_from(BootCheck{false, true, "Booting from ROM...", 10.02});
  CHECK(hang.accelerator == "tcg");
  CHECK(hang.reason ==
        "QEMU with TCG: /dev/kvm opens but a test guest did not boot under KVM within 10 s (no working nested "
        "virtualization); the console's last line: Booting from ROM...");
  const auto abort = choice_from(
      BootCheck{false, false, "QEMU exited with code 134 after 0.2 s: kvm_buf_set_msrs: Assertion failed", 0.2});
  CHECK(abort.accelerator == "tcg");
  CHECK_THAT(abort.reason, Catch::Contains("did not boot under KVM (QEMU exited with code 134 after 0.2 s: "
                                           "kvm_buf_set_msrs: Assertion failed; no working nested virtualization)"));
  const auto ok = choice_from(BootCheck{true, false, "", 0.42});
  CHECK(ok.accelerator == "kvm");
  CHECK(ok.reason == "QEMU with KVM (a test guest booted under KVM in 0.4 s)");
}

TEST_CASE("accelerator: the boot check's outcome is taken from the cache of this host boot, not run again") {
  if (const std::string problem = berth::hyperv::kvm_ioctl_problem(); !problem.empty()) {
    // No KVM here at all: the ioctl check decides before any cache is read.
    AccelChooser accel;
    const auto c = accel.probe(json::object(), "/usr/bin/qemu-system-x86_64", "/nonexistent");
    CHECK(c.accelerator == "tcg");
    CHECK(c.reason == "QEMU with TCG: " + problem + " (slow but works)");
    return;
  }
  berth::test::TempDir dir("berth-accel-cache");
  const std::string version = "6.1.0-99-amd64";
  const fs::path cache = fake_kernel_cache(dir, version);
  const std::string qemu = "/bin/true";  // the key names the binary; nothing is run while the cache answers
  const auto key = berth::hyperv::boot_check_key(qemu, version);
  REQUIRE_FALSE(key.boot_id.empty());
  auto write_cache = [&](const std::string& boot_id, bool booted) {
    std::ofstream(cache / "kvm-check.json")
        << json{{"version", 1},           {"boot_id", boot_id}, {"qemu", key.qemu},
                {"qemu_id", key.qemu_id}, {"kernel", version},  {"booted", booted},
                {"timed_out", !booted},   {"detail", ""},       {"seconds", booted ? 0.3 : 10.0}}
               .dump();
  };
  {
    write_cache(key.boot_id, false);
    AccelChooser accel;
    const auto t0 = std::chrono::steady_clock::now();
    const auto c = accel.probe(json::object(), qemu, cache);
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
    CHECK(c.accelerator == "tcg");
    CHECK_THAT(c.reason, Catch::Contains("did not boot under KVM within 10 s"));
  }
  {
    write_cache(key.boot_id, true);
    AccelChooser accel;
    CHECK(accel.probe(json::object(), qemu, cache).accelerator == "kvm");
  }
  {
    INFO("a cache of an earlier host boot is not believed: the check runs (here /bin/true, which boots nothing)");
    write_cache("an-earlier-boot", true);
    AccelChooser accel;
    const auto first = accel.probe(json::object(), qemu, cache);
    CHECK(first.accelerator == "checking");
    const auto settled = accel.settle(qemu, berth::hyperv::find_unpacked_kernel(cache), cache);
    INFO(settled.reason);
    CHECK(settled.accelerator == "tcg");
    CHECK_THAT(settled.reason, Catch::Contains("QEMU exited with code 0"));
    // ... and its outcome is what the cache says now.
    const json written = json::parse(std::ifstream(cache / "kvm-check.json"));
    CHECK(written["boot_id"] == key.boot_id);
    CHECK(written["booted"] == false);
    AccelChooser again;
    CHECK(again.probe(json::object(), qemu, cache).accelerator == "tcg");
  }
}
