// The pack and base manifests: what berth-pack writes reads back the same, services expand their
// variables, and a manifest that breaks the contract is refused naming the key.
#include <berth/contracts/pack_manifest.hpp>
#include <catch2/catch.hpp>

using namespace berth::contracts;
using nlohmann::json;

namespace {

const std::string kHashA(64, 'a');
const std::string kHashB = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

// A pack manifest as berth-pack wrote it before the contract (its keys and shapes).
json written_by_berth_pack() {
  return {{"format", 1},
          {"pack_version", "20.10.24+dfsg1-1+deb12u1+b6-berth1"},
          {"created", "2026-12-02T10:00:00Z"},
          {"components", {{"dockerd", "20.10.24"}, {"containerd", "1.6.20"}}},
          {"debian_packages", {{"docker.io", "20.10.24+dfsg1-1+deb12u1+b6"}}},
          {"reported", {{"dockerd", "Docker version 20.10.24+dfsg1, build 297e128"}}},
          {"files", {{"usr/sbin/dockerd", kHashA}, {"etc/docker/daemon.json", kHashB}}},
          {"symlinks", {{"usr/sbin/iptables", "xtables-legacy-multi"}}},
          {"services",
           {{{"name", "containerd"},
             {"argv", {"/usr/bin/containerd"}},
             {"env", {{"PATH", "/usr/sbin:/usr/bin"}}},
             {"health", {{"type", "unix_socket"}, {"path", "/run/containerd/containerd.sock"}}},
             {"start_timeout_s", 30}},
            {{"name", "dockerd"},
             {"argv", {"/usr/sbin/dockerd", "-H", "unix://${ENGINE_SOCKET}"}},
             {"env", {{"PATH", "/usr/sbin:/usr/bin"}}},
             {"health", {{"type", "http_unix"}, {"socket", "${ENGINE_SOCKET}"}, {"path", "/_ping"}}},
             {"start_timeout_s", 60}}}},
          {"upgrade_scripts", json::array()}};
}

std::string pack_error(const json& doc) {
  try {
    pack_manifest_from_json(doc);
  } catch (const ContractError& e) {
    return e.what();
  }
  return "(accepted)";
}

json with(json doc, const json::json_pointer& at, const json& value) {
  doc[at] = value;
  return doc;
}

json without(json doc, const std::string& key) {
  doc.erase(key);
  return doc;
}

}  // namespace

TEST_CASE("the pack manifest berth-pack writes reads into the contract and back unchanged") {
  const json doc = written_by_berth_pack();
  const PackManifest m = pack_manifest_from_json(doc);
  CHECK(m.format == 1);
  CHECK(m.pack_version == "20.10.24+dfsg1-1+deb12u1+b6-berth1");
  CHECK(m.components.at("dockerd") == "20.10.24");
  CHECK(m.tree.files.at("usr/sbin/dockerd") == kHashA);
  CHECK(m.tree.symlinks.at("usr/sbin/iptables") == "xtables-legacy-multi");
  REQUIRE(m.services.size() == 2);
  CHECK(m.services[0].name == "containerd");  // order kept: the start order
  CHECK(m.services[0].health.type == HealthType::unix_socket);
  CHECK(m.services[1].health.type == HealthType::http_unix);
  CHECK(m.services[1].health.socket == "${ENGINE_SOCKET}");
  CHECK(m.services[1].start_timeout_s == 60);
  CHECK(m.services[1].cwd == "/");

  // Written by the contract: the same document, key for key.
  CHECK(json(to_json(m)) == doc);
  const std::string text = write_pack_manifest(m);
  CHECK(read_pack_manifest(text) == m);
  // pack_version comes before the (long) file list, as people read it.
  CHECK(text.find("\"pack_version\"") < text.find("\"files\""));
}

TEST_CASE("every health check type and upgrade scripts survive write then read") {
  PackManifest m;
  m.pack_version = "1-berth1";
  m.tree.files = {{"bin/x", kHashA}};
  m.services = {Service{"a", {"/bin/a"}, {}, "/", HealthCheck{}, 30},
                Service{"b", {"/bin/b"}, {{"K", "V"}}, "/tmp", HealthCheck{HealthType::tcp, "", "", 8080, {}}, 5},
                Service{"c", {"/bin/c"}, {}, "/", HealthCheck{HealthType::exec, "", "", 0, {"/bin/true"}}, 3600}};
  m.upgrade_scripts = {UpgradeScript{"migrate", {"/bin/sh", "-c", "true"}}};
  CHECK(read_pack_manifest(write_pack_manifest(m)) == m);
}

TEST_CASE("the base manifest reads and writes") {
  BaseManifest b;
  b.base_version = "base1-0123456789abcdef";
  b.created = "2026-12-02T10:00:00Z";
  b.components = {{"berth-init", "0123456789abcdef"}, {"busybox", "1.35.0"}};
  b.tree.files = {{"sbin/berth-init", kHashA}};
  b.tree.symlinks = {{"init", "/sbin/berth-init"}, {"bin/sh", "busybox"}};
  b.dirs = {"proc", "var/lib/docker"};
  CHECK(read_base_manifest(write_base_manifest(b)) == b);
  CHECK_THROWS_WITH(read_base_manifest(R"({"format":1,"base_version":"b","files":{},"pack_version":"x"})"),
                    "base manifest: unknown key \"pack_version\"");
  CHECK_THROWS_WITH(read_base_manifest(R"({"format":1,"base_version":"b","files":{},"dirs":["/proc"]})"),
                    "base manifest.dirs: \"/proc\" is not a plain relative path");
}

TEST_CASE("a pack manifest that breaks the contract is refused naming the key") {
  const json doc = written_by_berth_pack();
  CHECK(pack_error(doc) == "(accepted)");
  CHECK(pack_error(with(doc, "/extra"_json_pointer, 1)) == "manifest: unknown key \"extra\"");
  CHECK(pack_error(without(doc, "format")) == "manifest: missing \"format\"");
  CHECK(pack_error(with(doc, "/format"_json_pointer, 2)) ==
        "manifest: format 2 is not one this berth reads (1); rebuild it with this berth's berth-pack");
  CHECK(pack_error(without(doc, "pack_version")) == "manifest: missing \"pack_version\"");
  CHECK(pack_error(with(doc, "/pack_version"_json_pointer, "a/b")) ==
        "manifest.pack_version must be a non-empty name without '/' that does not start with '.'");
  CHECK(pack_error(without(doc, "files")) == "manifest: missing \"files\"");
  CHECK(pack_error(with(doc, "/files"_json_pointer, json::array())) == "manifest.files must be an object");
  CHECK(pack_error(with(doc, "/files/usr~1bin~1x"_json_pointer, "ABC")) ==
        "manifest.files.usr/bin/x must be a SHA-256 in lowercase hex (64 characters)");
  CHECK(pack_error(with(doc, "/files/..~1etc~1passwd"_json_pointer, kHashA)) ==
        "manifest.files.../etc/passwd: not a plain relative path");
  CHECK(pack_error(with(doc, "/symlinks/usr~1sbin~1dockerd"_json_pointer, "x")) ==
        "manifest.symlinks.usr/sbin/dockerd: also listed in files");
  CHECK(pack_error(with(doc, "/components/dockerd"_json_pointer, 20)) ==
        "manifest.components.dockerd must be a string");
  CHECK(pack_error(with(doc, "/services/0/name"_json_pointer, "init")) ==
        "manifest.services[0].name must be a non-empty file name other than \"init\"");
  CHECK(pack_error(with(doc, "/services/1/name"_json_pointer, "containerd")) ==
        "manifest: service \"containerd\" appears twice");
  CHECK(pack_error(with(doc, "/services/0/argv"_json_pointer, json::array())) ==
        "service containerd: argv must not be empty");
  CHECK(pack_error(with(doc, "/services/0/start_timeout_s"_json_pointer, 0)) ==
        "service containerd.start_timeout_s must be an integer within 1..3600");
  CHECK(pack_error(with(doc, "/services/0/restart"_json_pointer, true)) ==
        "manifest.services[0]: unknown key \"restart\"");
  CHECK(pack_error(with(doc, "/services/0/health"_json_pointer, {{"type", "unix_socket"}})) ==
        "service containerd.health needs \"path\"");
  CHECK(pack_error(with(doc, "/services/0/health"_json_pointer, {{"type", "tcp"}, {"port", 70000}})) ==
        "service containerd.health.port must be an integer within 1..65535");
  CHECK(pack_error(with(doc, "/services/0/health"_json_pointer, {{"type", "http"}})) ==
        "service containerd.health.type \"http\" is not one of unix_socket, http_unix, tcp, exec, none");
  CHECK(pack_error(with(doc, "/upgrade_scripts"_json_pointer, json::array({json{{"name", "x"}}}))) ==
        "manifest.upgrade_scripts[0]: argv must not be empty");
  CHECK_THROWS_WITH(read_pack_manifest("[]"), "manifest must be a JSON object");
  CHECK_THROWS_WITH(read_pack_manifest(""), "manifest is not valid JSON");
}

TEST_CASE("a service's ${NAME}s expand from the environment's vars, and an unknown one is named") {
  const PackManifest m = pack_manifest_from_json(written_by_berth_pack());
  const Service dockerd = expand_vars(m.services[1], {{"ENGINE_SOCKET", "/run/docker.sock"}});
  CHECK(dockerd.argv[2] == "unix:///run/docker.sock");
  CHECK(dockerd.health.socket == "/run/docker.sock");
  CHECK(dockerd.health.path == "/_ping");
  CHECK_THROWS_WITH(expand_vars(m.services[1], {}), "service dockerd: unknown variable ${ENGINE_SOCKET}");
  CHECK(expand_vars("a $b ${ unclosed", {}) == "a $b ${ unclosed");
  CHECK(expand_vars("${A}${A}-${B}", {{"A", "x"}, {"B", ""}}) == "xx-");
}

TEST_CASE("manifest paths are plain relative paths") {
  for (const char* ok : {"a", "usr/sbin/dockerd", "a..b/c", ".hidden/x"}) {
    CAPTURE(ok);
    CHECK(is_plain_relative_path(ok));
  }
  for (const char* bad : {"", "/etc/passwd", "a/../b", "..", "./a", "a//b", "a/", "a/."}) {
    CAPTURE(bad);
    CHECK_FALSE(is_plain_relative_path(bad));
  }
}

TEST_CASE("an on-request service and the Kubernetes section survive write then read, a bad one is named") {
  json doc = written_by_berth_pack();
  doc["services"].push_back({{"name", "kubernetes"},
                             {"argv", {"/usr/local/bin/k3s", "server"}},
                             {"env", json::object()},
                             {"health", {{"type", "tcp"}, {"port", 6443}}},
                             {"start_timeout_s", 300},
                             {"start", "on_request"}});
  doc["kubernetes"] = {{"service", "kubernetes"},
                       {"version", "v1.31.4+k3s1"},
                       {"api_port", 6443},
                       {"data_dir", "/var/lib/berth-data/kubernetes"}};
  const PackManifest m = pack_manifest_from_json(doc);
  CHECK(m.services[0].start == StartPolicy::always);
  CHECK(m.services[2].start == StartPolicy::on_request);
  REQUIRE(m.kubernetes);
  CHECK(m.kubernetes->data_dir == "/var/lib/berth-data/kubernetes");
  CHECK(read_pack_manifest(write_pack_manifest(m)) == m);
  // A manifest without them writes no "start" or "kubernetes" keys (older readers stay happy).
  const auto plain = write_pack_manifest(pack_manifest_from_json(written_by_berth_pack()));
  CHECK(plain.find("\"start\"") == std::string::npos);
  CHECK(plain.find("kubernetes") == std::string::npos);

  CHECK(pack_error(with(doc, "/services/2/start"_json_pointer, "sometimes")) ==
        "service kubernetes.start \"sometimes\" is not one of always, on_request");
  CHECK(pack_error(with(doc, "/kubernetes/service"_json_pointer, "dockerd")) ==
        "manifest.kubernetes.service \"dockerd\" is not an on_request service of the pack");
  CHECK(pack_error(with(doc, "/kubernetes/data_dir"_json_pointer, "/var/../etc")) ==
        "manifest.kubernetes.data_dir must be an absolute path without '.' or '..' parts");
}

TEST_CASE(
    "a service's notify and start_with_previous survive write then read, are left out when false, and are booleans") {
  json doc = written_by_berth_pack();
  doc["services"][1]["notify"] = true;
  doc["services"][1]["start_with_previous"] = true;
  const PackManifest m = pack_manifest_from_json(doc);
  CHECK_FALSE(m.services[0].notify);
  CHECK_FALSE(m.services[0].start_with_previous);
  CHECK(m.services[1].notify);
  CHECK(m.services[1].start_with_previous);
  CHECK(read_pack_manifest(write_pack_manifest(m)) == m);
  const auto plain = write_pack_manifest(pack_manifest_from_json(written_by_berth_pack()));
  for (const std::string key : {"notify", "start_with_previous"}) {
    CHECK(plain.find('"' + key + '"') == std::string::npos);
    CHECK(pack_error(with(doc, json::json_pointer("/services/1/" + key), "yes")) ==
          "service dockerd." + key + " must be true or false");
  }
}
