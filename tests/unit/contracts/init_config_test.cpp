// berth-init's config document: what each backend writes reads back the same, defaults, and
// errors that name the key.
#include <berth/contracts/init_config.hpp>
#include <catch2/catch.hpp>

using namespace berth::contracts;
using nlohmann::json;

namespace {

std::string error_of(const json& doc) {
  try {
    init_config_from_json(doc);
  } catch (const ContractError& e) {
    return e.what();
  }
  return "(accepted)";
}

}  // namespace

TEST_CASE("an empty config is berth-init's defaults") {
  const InitConfig c = read_init_config("{}");
  CHECK(c == InitConfig{});
  CHECK(c.hostname == "berth");
  CHECK(c.root == RootMode::as_given);
  CHECK(c.dev == DevMode::automatic);
  CHECK(c.pack_manifest == "/usr/share/berth/pack/manifest.json");
  CHECK(c.log_dir == "/var/log/berth");
  CHECK_FALSE(c.aslr_off_while_starting);
  CHECK_FALSE(c.agent.has_value());
  CHECK_FALSE(c.network.has_value());
}

TEST_CASE("every field survives write then read") {
  InitConfig c;
  c.hostname = "env-1";
  c.root = RootMode::overlay;
  c.root_layers = {InitRootLayer{"berth-layer-0", "ext4"}, InitRootLayer{"berth-layer-1", "erofs"}};
  c.dev = DevMode::tmpfs;
  c.modules = {"/lib/modules/6.1/kernel/fs/overlayfs/overlay.ko", "/lib/modules/6.1/x.ko"};
  c.mounts = {InitMount{"/dev/vda", "/data", "ext4", "", {"noatime"}, false},
              InitMount{"/data/docker", "/var/lib/docker", "", "", {"ro", "nosuid"}, true},
              InitMount{"tag", "/mnt/host", "9p", "trans=virtio", {}, false}};
  c.network = InitNetwork{"eth0", "10.0.2.15/24", "10.0.2.2", {"10.0.2.3"}, {}};
  c.agent = InitAgent{"", {"/dev/virtio-ports/berth.agent", "/dev/virtio-ports/berth.control"}};
  c.pack_manifest = "/p/manifest.json";
  c.vars = {{"ENGINE_SOCKET", "/run/docker.sock"}, {"X_1", ""}};
  c.log_dir = "";
  c.aslr_off_while_starting = true;
  const std::string text = write_init_config(c);
  INFO(text);
  CHECK(read_init_config(text) == c);

  c.agent = InitAgent{"/.berth-host/agent.sock", {}};
  c.network.reset();
  c.root = RootMode::as_given;
  c.root_layers.clear();
  CHECK(read_init_config(write_init_config(c)) == c);
}

TEST_CASE("root layers: read-only disks by serial under an overlay root, top first") {
  const InitConfig c = init_config_from_json(
      {{"root", "overlay"},
       {"root_layers", {{{"serial", "berth-layer-0"}, {"type", "ext4"}}, {{"serial", "b1"}, {"type", "ext4"}}}}});
  REQUIRE(c.root_layers.size() == 2);
  CHECK(c.root_layers[0] == InitRootLayer{"berth-layer-0", "ext4"});
  CHECK(c.root_layers[1].serial == "b1");
  CHECK(error_of({{"root_layers", {{{"serial", "s"}, {"type", "ext4"}}}}}) ==
        "config.root_layers needs \"root\": \"overlay\"");
  CHECK_THAT(error_of({{"root", "overlay"}, {"root_layers", {{{"serial", "s"}}}}}),
             Catch::Contains("config.root_layers[0]") && Catch::Contains("type"));
  CHECK_THAT(error_of({{"root", "overlay"}, {"root_layers", {{{"serial", std::string(21, 's')}, {"type", "ext4"}}}}}),
             Catch::Contains("config.root_layers[0].serial must be 1..20 characters"));
  CHECK_THAT(error_of({{"root", "overlay"}, {"root_layers", {{{"serial", "a/b"}, {"type", "ext4"}}}}}),
             Catch::Contains("without '/'"));
  CHECK_THAT(error_of({{"root", "overlay"}, {"root_layers", {{{"serial", "s"}, {"type", "ext4"}, {"x", 1}}}}}),
             Catch::Contains("config.root_layers[0]"));
  // No layers: nothing written, as before the key existed.
  CHECK_FALSE(json(to_json(InitConfig{})).contains("root_layers"));
}

TEST_CASE("the document wsl2 wrote before the contract reads as the contract's wsl2 config") {
  // plugins/wsl2 built this JSON by hand until it used the contract.
  const json before = {{"hostname", "berth"},
                       {"mounts", json::array()},
                       {"agent", {{"listen_unix", "/.berth-host/agent.sock"}}},
                       {"pack_manifest", "/usr/share/berth/pack/manifest.json"},
                       {"vars", {{"ENGINE_SOCKET", "/.berth-host/docker.sock"}}},
                       {"log_dir", "/var/log/berth"},
                       {"modules", json::array()}};
  const InitConfig c = init_config_from_json(before);
  InitConfig expected;
  expected.agent = InitAgent{"/.berth-host/agent.sock", {}};
  expected.vars = {{"ENGINE_SOCKET", "/.berth-host/docker.sock"}};
  CHECK(c == expected);
  CHECK(read_init_config(write_init_config(c)) == c);
}

TEST_CASE("the contract expresses everything hyperv writes today") {
  // plugins/hyperv's init_config() plus the "modules" its initramfs builder adds, as of this
  // contract's introduction; every key and value must come through.
  const json hyperv = {
      {"hostname", "berth"},
      {"root", "overlay"},
      {"agent", {{"devices", {"/dev/virtio-ports/berth.agent", "/dev/virtio-ports/berth.control"}}}},
      {"dev", "auto"},
      {"mounts",
       {{{"source", "/dev/vda"},
         {"target", "/var/lib/berth-data"},
         {"type", "ext4"},
         {"options", ""},
         {"flags", {"noatime"}}},
        {{"source", "/var/lib/berth-data/docker"}, {"target", "/var/lib/docker"}, {"bind", true}},
        {{"source", "/var/lib/berth-data/containerd"}, {"target", "/var/lib/containerd"}, {"bind", true}},
        {{"source", "hostshare"},
         {"target", "/mnt/host"},
         {"type", "9p"},
         {"options", "trans=virtio,version=9p2000.L,msize=262144,access=client,cache=none"}}}},
      {"network",
       {{"interface", "eth0"},
        {"address", "10.0.2.15/24"},
        {"gateway", "10.0.2.2"},
        {"dns", {"10.0.2.3"}},
        {"hosts", {{"host.berth.internal", "10.0.2.2"}}}}},
      {"pack_manifest", "/usr/share/berth/pack/manifest.json"},
      {"vars", {{"ENGINE_SOCKET", "/run/docker.sock"}}},
      {"log_dir", "/var/log/berth"},
      {"modules", {"/lib/modules/6.1.0-28-amd64/kernel/lib/crc32c_generic.ko"}}};
  const InitConfig c = init_config_from_json(hyperv);
  CHECK(c.root == RootMode::overlay);
  CHECK(c.dev == DevMode::automatic);
  REQUIRE(c.agent.has_value());
  CHECK(c.agent->devices ==
        std::vector<std::string>{"/dev/virtio-ports/berth.agent", "/dev/virtio-ports/berth.control"});
  REQUIRE(c.mounts.size() == 4);
  CHECK(c.mounts[0] == InitMount{"/dev/vda", "/var/lib/berth-data", "ext4", "", {"noatime"}, false});
  CHECK(c.mounts[1] == InitMount{"/var/lib/berth-data/docker", "/var/lib/docker", "", "", {}, true});
  CHECK(c.mounts[3].type == "9p");
  CHECK(c.mounts[3].options == "trans=virtio,version=9p2000.L,msize=262144,access=client,cache=none");
  REQUIRE(c.network.has_value());
  CHECK(*c.network ==
        InitNetwork{"eth0", "10.0.2.15/24", "10.0.2.2", {"10.0.2.3"}, {{"host.berth.internal", "10.0.2.2"}}});
  CHECK(c.modules.size() == 1);
  CHECK(c.vars.at("ENGINE_SOCKET") == "/run/docker.sock");

  // Written back by the contract, every key of hyperv's document holds the same value (an
  // empty "options" is written as no options, which berth-init reads the same).
  const json written = json(to_json(c));
  for (const auto& [key, value] : hyperv.items()) {
    CAPTURE(key);
    if (key == "mounts") continue;
    CHECK(written.at(key) == value);
  }
  REQUIRE(written.at("mounts").size() == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    json original = hyperv["mounts"][i];
    if (original.value("options", "x").empty()) original.erase("options");
    CHECK(written["mounts"][i] == original);
  }
  CHECK(read_init_config(write_init_config(c)) == c);
}

TEST_CASE("a single agent \"device\" reads as one device") {
  const InitConfig c = read_init_config(R"({"agent":{"device":"/etc/berth/agent.tty"}})");
  REQUIRE(c.agent.has_value());
  CHECK(c.agent->devices == std::vector<std::string>{"/etc/berth/agent.tty"});
  CHECK(c.agent->listen_unix.empty());
}

TEST_CASE("a config that breaks the contract is refused naming the key") {
  CHECK(error_of(json::array()) == "config must be a JSON object");
  CHECK(error_of({{"hostnam", "x"}}) == "config: unknown key \"hostnam\"");
  CHECK(error_of({{"hostname", 7}}) == "config.hostname must be a string");
  CHECK(error_of({{"hostname", ""}}) == "config.hostname must be 1..64 characters");
  CHECK(error_of({{"root", "tmpfs"}}) == "config.root must be \"overlay\" or absent");
  CHECK(error_of({{"dev", "udev"}}) == "config.dev must be auto, devtmpfs or tmpfs");
  CHECK(error_of({{"modules", {"a", 1}}}) == "config.modules must be an array of strings");
  CHECK(error_of({{"mounts", {{{"source", "x"}, {"target", "rel"}, {"type", "tmpfs"}}}}}) ==
        "config.mounts[0].target must be an absolute path");
  CHECK(error_of({{"mounts", {{{"source", "x"}, {"target", "/t"}}}}}) ==
        "config.mounts[0] needs a \"type\" or \"bind\": true");
  CHECK(error_of({{"mounts", {{{"source", "x"}, {"target", "/t"}, {"type", "tmpfs"}, {"flags", {"rdonly"}}}}}}) ==
        "config.mounts[0].flags: unknown flag \"rdonly\"");
  CHECK(error_of({{"mounts", {{{"source", "x"}, {"target", "/t"}, {"bind", "yes"}}}}}) ==
        "config.mounts[0].bind must be true or false");
  CHECK(error_of({{"mounts", {{{"source", "x"}, {"target", "/t"}, {"type", "tmpfs"}, {"size", 1}}}}}) ==
        "config.mounts[0]: unknown key \"size\"");
  CHECK(error_of({{"network", {{"address", "10.0.2.15"}}}}) ==
        "config.network.address must be an IPv4 address with a prefix length, e.g. 10.0.2.15/24");
  CHECK(error_of({{"network", {{"interface", "eth0"}}}}) == "config.network: missing \"address\"");
  CHECK(error_of({{"agent", {{"listen_unix", "/a"}, {"device", "/b"}}}}) ==
        "config.agent needs exactly one of \"listen_unix\" or \"device\" (or \"devices\")");
  CHECK(error_of({{"agent", json::object()}}) ==
        "config.agent needs exactly one of \"listen_unix\" or \"device\" (or \"devices\")");
  CHECK(error_of({{"agent", {{"listen_unix", "agent.sock"}}}}) == "config.agent.listen_unix must be an absolute path");
  CHECK(error_of({{"vars", {{"A", 1}}}}) == "config.vars.A must be a string");
  CHECK(error_of({{"vars", {{"A-B", "x"}}}}) == "config.vars: \"A-B\" is not a variable name (letters, digits, _)");
  CHECK(error_of({{"pack_manifest", "manifest.json"}}) == "config.pack_manifest must be an absolute path");
  CHECK(error_of({{"log_dir", "logs"}}) == "config.log_dir must be an absolute path");
  CHECK(error_of({{"aslr_off_while_starting", "yes"}}) == "config.aslr_off_while_starting must be true or false");
  CHECK_THROWS_WITH(read_init_config("{ not json"), "config is not valid JSON");
}
