#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "berth/packs/tree_verify.hpp"
#include "pack_fixture.hpp"

namespace fs = std::filesystem;
using berth::packs::PackStore;
using berth::packs::test::berth_pack;
using berth::packs::test::BuiltPack;

namespace {

void flip_byte(const fs::path& file, std::streamoff offset) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekg(offset);
  char c = 0;
  f.get(c);
  f.seekp(offset);
  f.put(static_cast<char>(c ^ 0x01));
}

nlohmann::json read_json(const fs::path& file) {
  std::ifstream in(file);
  return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("berth-pack builds a version pack and base image that verify") {
  BuiltPack built;
  const auto& store = built.store;
  const std::string version = built.result.pack_version;
  CHECK_FALSE(built.result.reused);
  CHECK(version.size() > 7);
  CHECK(version.substr(version.size() - 7) == "-berth3");

  const auto packs = store.list();
  REQUIRE(packs.size() == 1);
  CHECK(packs[0].version == version);
  CHECK(packs[0].components.at("dockerd").rfind("20.10", 0) == 0);
  CHECK(packs[0].components.count("containerd") == 1);
  CHECK(packs[0].components.count("runc") == 1);
  CHECK(store.verify(version) == std::nullopt);
  CHECK(store.current() == version);

  // The engine's programs, their libraries, the loader at its PT_INTERP path, legacy iptables.
  const fs::path rootfs = built.rootfs();
  for (const char* f : {"usr/sbin/dockerd", "usr/bin/containerd", "usr/bin/containerd-shim-runc-v2", "usr/sbin/runc",
                        "usr/sbin/docker-proxy", "usr/bin/tini-static", "usr/sbin/xtables-legacy-multi",
                        "usr/lib/x86_64-linux-gnu/libc.so.6", "usr/lib/x86_64-linux-gnu/libseccomp.so.2",
                        "usr/lib/x86_64-linux-gnu/xtables/libxt_standard.so", "usr/share/berth/pack/manifest.json"}) {
    CAPTURE(f);
    CHECK(fs::exists(rootfs / f));
  }
  CHECK(fs::read_symlink(rootfs / "usr/bin/docker-init") == "tini-static");
  CHECK(fs::read_symlink(rootfs / "usr/sbin/iptables") == "xtables-legacy-multi");
  CHECK(fs::is_symlink(rootfs / "lib64/ld-linux-x86-64.so.2"));
  CHECK(fs::is_regular_file(rootfs / "lib64/ld-linux-x86-64.so.2"));  // and it resolves inside the pack

  // The manifest: format, every file hashed, services containerd then dockerd.
  const auto manifest = read_json(store.pack_dir(version) / "manifest.json");
  CHECK(manifest["format"] == 1);
  CHECK(manifest["pack_version"] == version);
  CHECK(manifest["files"].contains("usr/sbin/dockerd"));
  CHECK(manifest["files"]["usr/sbin/dockerd"].get<std::string>().size() == 64);
  CHECK_FALSE(manifest["files"].contains("usr/share/berth/pack/manifest.json"));
  REQUIRE(manifest["services"].size() == 2);
  CHECK(manifest["services"][0]["name"] == "containerd");
  CHECK(manifest["services"][0]["argv"][0] == "/usr/bin/containerd");
  CHECK(manifest["services"][0]["health"]["type"] == "unix_socket");
  CHECK(manifest["services"][1]["name"] == "dockerd");
  CHECK(manifest["services"][1]["argv"][2] == "unix://${ENGINE_SOCKET}");
  CHECK(manifest["services"][1]["health"]["type"] == "http_unix");
  CHECK(manifest["services"][1]["start_timeout_s"] == 60);

  // The base image.
  const auto base = store.base_dir();
  REQUIRE(base.has_value());
  CHECK(store.verify_base() == std::nullopt);
  const fs::path base_root = *base / "rootfs";
  CHECK(fs::is_regular_file(base_root / "sbin/berth-init"));
  CHECK(fs::read_symlink(base_root / "init") == "/sbin/berth-init");
  CHECK(fs::is_regular_file(base_root / "bin/busybox"));
  CHECK(fs::read_symlink(base_root / "bin/sh") == "busybox");
  for (const char* d : {"proc", "sys", "dev", "tmp", "run", "var/lib/docker", "var/lib/containerd",
                        "var/lib/berth-data", "var/log", "mnt/host", "etc/berth", "root"}) {
    CAPTURE(d);
    CHECK(fs::is_directory(base_root / d));
  }
  for (const char* f : {"etc/passwd", "etc/group", "etc/hosts", "etc/resolv.conf", "etc/nsswitch.conf"}) {
    CAPTURE(f);
    CHECK(fs::is_regular_file(base_root / f));
  }
  const auto base_manifest = read_json(*base / "manifest.json");
  CHECK(base_manifest["base_version"] == base->filename().string());
  CHECK(base_manifest["files"].contains("sbin/berth-init"));

  // The builder's own verify agrees, and a second build reuses what is there.
  CHECK(berth_pack({"verify", store.pack_dir(version).string()}).exit_code == 0);
  CHECK(berth_pack({"verify", base->string()}).exit_code == 0);
  const auto again = store.build(berth::packs::test::init_path(), {}, berth::packs::test::builder_path());
  CHECK(again.reused);
  CHECK(again.pack_version == version);
  CHECK(again.base_version == built.result.base_version);
}

TEST_CASE("berth-pack build reports progress up to 1") {
  BuiltPack built;
  REQUIRE(built.progress.size() > 10);
  double last = 0;
  for (const auto& [fraction, message] : built.progress) {
    CHECK(fraction >= last);
    last = fraction;
  }
  CHECK(last == Approx(1.0));
  bool saw_dockerd = false;
  for (const auto& p : built.progress) saw_dockerd |= p.second == "copying dockerd";
  CHECK(saw_dockerd);
}

TEST_CASE("a pack with one byte changed is refused, naming the file") {
  BuiltPack built;
  const std::string version = built.result.pack_version;
  // A same-size change in the middle of the biggest file: only a full hash catches it.
  const fs::path dockerd = built.rootfs() / "usr/sbin/dockerd";
  flip_byte(dockerd, static_cast<std::streamoff>(fs::file_size(dockerd) / 2));
  const auto problem = built.store.verify(version);
  REQUIRE(problem.has_value());
  CHECK_THAT(*problem, Catch::StartsWith("pack " + version + ": file usr/sbin/dockerd: sha256 mismatch (expected "));
  const auto list = built.store.list(true);
  REQUIRE(list.size() == 1);
  CHECK(list[0].verified == false);

  const auto cli = berth_pack({"verify", built.store.pack_dir(version).string()});
  CHECK(cli.exit_code == 1);
  CHECK_THAT(cli.stderr_tail, Catch::Contains("file usr/sbin/dockerd: sha256 mismatch"));

  // Rebuilding replaces the damaged pack.
  const auto rebuilt = built.store.build(berth::packs::test::init_path(), {}, berth::packs::test::builder_path());
  CHECK_FALSE(rebuilt.reused);
  CHECK(built.store.verify(version) == std::nullopt);
}

TEST_CASE("a pack with a missing or an extra file is refused, naming the file") {
  BuiltPack built;
  const std::string version = built.result.pack_version;
  const fs::path lib = built.rootfs() / "usr/lib/x86_64-linux-gnu/libseccomp.so.2";
  const fs::path real = fs::canonical(lib);
  const std::string real_rel = fs::relative(real, built.rootfs()).generic_string();

  const auto problem_now = [&] { return built.store.verify(version); };
  const auto cli_now = [&] { return berth_pack({"verify", built.store.pack_dir(version).string()}); };
  // One build, damaged and repaired in turn (each build costs seconds).
  {
    INFO("missing file");
    const fs::path aside = built.state / "aside";
    fs::rename(real, aside);
    const auto problem = problem_now();
    REQUIRE(problem.has_value());
    CHECK(*problem == "pack " + version + ": file " + real_rel + ": missing");
    const auto cli = cli_now();
    CHECK(cli.exit_code == 1);
    CHECK_THAT(cli.stderr_tail, Catch::Contains("file " + real_rel + ": missing"));
    fs::rename(aside, real);
    REQUIRE(problem_now() == std::nullopt);
  }
  {
    INFO("extra file");
    const fs::path intruder = built.rootfs() / "usr/bin/intruder";
    std::ofstream(intruder) << "#!/bin/sh\n";
    const auto problem = problem_now();
    REQUIRE(problem.has_value());
    CHECK(*problem == "pack " + version + ": file usr/bin/intruder: present but not in the manifest");
    CHECK(cli_now().exit_code == 1);
    fs::remove(intruder);
    REQUIRE(problem_now() == std::nullopt);
  }
  {
    INFO("manifest copy for berth-init edited");
    const fs::path copy = built.rootfs() / "usr/share/berth/pack/manifest.json";
    const fs::path saved = built.state / "manifest.saved";
    fs::copy_file(copy, saved);
    std::ofstream(copy, std::ios::app) << " ";
    const auto problem = problem_now();
    REQUIRE(problem.has_value());
    CHECK_THAT(*problem, Catch::Contains("usr/share/berth/pack/manifest.json"));
    fs::copy_file(saved, copy, fs::copy_options::overwrite_existing);
    REQUIRE(problem_now() == std::nullopt);
  }
  {
    INFO("base image file changed");
    const fs::path passwd = *built.store.base_dir() / "rootfs/etc/passwd";
    flip_byte(passwd, 0);
    const auto problem = built.store.verify_base();
    REQUIRE(problem.has_value());
    CHECK_THAT(*problem, Catch::Contains("file etc/passwd: sha256 mismatch"));
    CHECK(berth_pack({"verify", built.store.base_dir()->string()}).exit_code == 1);
    flip_byte(passwd, 0);
    CHECK(built.store.verify_base() == std::nullopt);
  }
}

TEST_CASE("an interrupted build is never listed and is cleaned up by the next build") {
  berth::test::TempDir state("berth-packs");
  fs::create_directories(state / "packs/.tmp-20.10.24-berth1-999/rootfs");
  std::ofstream(state / "packs/.tmp-20.10.24-berth1-999/manifest.json") << "{}";
  PackStore store(state.path());
  CHECK(store.list().empty());
  CHECK(store.current() == std::nullopt);
  CHECK(store.verify("20.10.24-berth1").has_value());
  CHECK_THROWS_AS(store.set_current("20.10.24-berth1"), std::invalid_argument);
  store.build(berth::packs::test::init_path(), {}, berth::packs::test::builder_path());
  CHECK_FALSE(fs::exists(state / "packs/.tmp-20.10.24-berth1-999"));
  CHECK(store.list().size() == 1);
}

TEST_CASE("berth-pack reports usage errors and failures") {
  CHECK(berth_pack({"--help"}).exit_code == 0);
  CHECK(berth_pack({"build", "--help"}).exit_code == 0);
  CHECK(berth_pack({"verify", "--help"}).exit_code == 0);
  CHECK(berth_pack({"ls", "--help"}).exit_code == 0);
  CHECK(berth_pack({}).exit_code == 2);
  CHECK(berth_pack({"frobnicate"}).exit_code == 2);
  CHECK(berth_pack({"build", "--out", "/tmp/x"}).exit_code == 2);
  berth::test::TempDir state("berth-packs");
  const auto missing_init = berth_pack({"build", "--out", state.path().string(), "--init", "/nonexistent/berth-init"});
  CHECK(missing_init.exit_code == 1);
  CHECK_THAT(missing_init.stderr_tail, Catch::Contains("/nonexistent/berth-init"));
  PackStore store(state.path());
  CHECK_THROWS_WITH(store.build("/nonexistent/berth-init", {}, berth::packs::test::builder_path()),
                    Catch::Contains("berth-pack build failed (exit 1)"));
}

TEST_CASE("pack versions order like Debian versions") {
  using berth::packs::version_less;
  CHECK(version_less("20.10.24+dfsg1-1+deb12u1-berth1", "20.10.25+dfsg1-1-berth1"));
  CHECK(version_less("20.10.9-berth1", "20.10.24-berth1"));
  CHECK(version_less("1.0~rc1-berth1", "1.0-berth1"));
  CHECK_FALSE(version_less("20.10.24-berth2", "20.10.24-berth1"));
  CHECK_FALSE(version_less("1.0", "1.0"));
}

TEST_CASE("programs are found next to the executable or in PATH") {
  // The test binary's own directory: the test executable itself is found as a sibling.
  const auto self = fs::read_symlink("/proc/self/exe");
  const auto found = PackStore::find_sibling(self.filename().string());
  REQUIRE(found.has_value());
  CHECK(fs::equivalent(*found, self));
  CHECK(PackStore::find_sibling("sh").has_value());  // from PATH
  CHECK_FALSE(PackStore::find_sibling("no-such-program-berth").has_value());
}

TEST_CASE("the check before use skips re-hashing an untouched pack, and still catches a one-byte change") {
  BuiltPack built;
  const std::string version = built.result.pack_version;
  const fs::path stamp = built.store.packs_dir() / (".verified-" + version);
  fs::remove(stamp);
  REQUIRE(built.store.verify_before_use(version) == std::nullopt);
  REQUIRE(fs::exists(stamp));
  // Untouched: the stamp holds, and the pack is not listed twice because of it.
  CHECK(built.store.verify_before_use(version) == std::nullopt);
  CHECK(built.store.list().size() == 1);
  // A same-size change after a verified start: ctime moved, so the full hash runs and names the file.
  const fs::path dockerd = built.rootfs() / "usr/sbin/dockerd";
  flip_byte(dockerd, static_cast<std::streamoff>(fs::file_size(dockerd) / 2));
  const auto problem = built.store.verify_before_use(version);
  REQUIRE(problem.has_value());
  CHECK_THAT(*problem, Catch::Contains("file usr/sbin/dockerd: sha256 mismatch"));
  CHECK_FALSE(fs::exists(stamp));
  // The base image has its own stamp.
  CHECK(built.store.verify_base_before_use() == std::nullopt);
  CHECK(built.store.verify_base_before_use() == std::nullopt);
}
