// CA sources read with OpenSSL: certificates made by the openssl tool for the test (a root,
// an intermediate it signed, DER and PEM), next to files that are not certificates.
#include "ca_bundle.hpp"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "temp_dir.hpp"

using namespace berth::proxy;
namespace fs = std::filesystem;

namespace {

void run(const std::string& cmd) {
  REQUIRE(std::system((cmd + " 2>/dev/null").c_str()) == 0);
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// root.pem (self-signed CA), inter.pem (a CA signed by root), root.der, key.pem.
void make_cas(const fs::path& d) {
  const std::string q = "'" + d.string() + "'";
  run("cd " + q +
      " && openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out root.pem -days 2 "
      "-subj '/CN=berth test root' -addext basicConstraints=critical,CA:TRUE");
  run("cd " + q +
      " && openssl req -newkey rsa:2048 -nodes -keyout ikey.pem -out inter.csr -subj '/CN=berth test "
      "intermediate' && printf 'basicConstraints=critical,CA:TRUE\\n' > ext.cnf && openssl x509 -req -in inter.csr "
      "-CA root.pem -CAkey key.pem -CAcreateserial -out inter.pem -days 2 -extfile ext.cnf");
  run("cd " + q + " && openssl x509 -in root.pem -outform DER -out root.der");
}

}  // namespace

TEST_CASE("a directory of CA files: PEM, DER and a chain, intermediates kept, duplicates once") {
  berth::test::TempDir tmp("proxy-ca");
  const auto work = tmp / "work";
  fs::create_directories(work);
  make_cas(work);
  const auto store = tmp / "store";
  write(store / "corp-root.crt", read(work / "root.pem"));
  write(store / "sub" / "chain.pem", read(work / "inter.pem") + read(work / "root.pem"));  // root again: once
  write(store / "root.der", read(work / "root.der"));                                      // the same, as DER
  const auto b = collect_cas({store.string(), (tmp / "missing").string()}, {});
  CHECK(b.problems.empty());
  REQUIRE(b.certs.size() == 2);
  const auto root = std::find_if(b.certs.begin(), b.certs.end(), [](const CaCert& c) { return c.self_signed; });
  const auto inter = std::find_if(b.certs.begin(), b.certs.end(), [](const CaCert& c) { return !c.self_signed; });
  REQUIRE(root != b.certs.end());
  REQUIRE(inter != b.certs.end());
  CHECK(root->subject == "CN=berth test root");
  CHECK(root->is_ca);
  CHECK(inter->subject == "CN=berth test intermediate");
  CHECK(inter->issuer == "CN=berth test root");
  CHECK(inter->is_ca);
  CHECK(root->sha256.size() == 64);
  // The bundle is PEM that OpenSSL reads back: both certificates, nothing else.
  write(tmp / "bundle.pem", b.pem());
  const auto again = collect_cas({(tmp / "bundle.pem").string()}, {});
  CHECK(again.certs.size() == 2);
  CHECK(again.digest() == b.digest());
}

TEST_CASE("a file that is not a certificate is refused with its path and the reason, the rest counts") {
  berth::test::TempDir tmp("proxy-ca");
  make_cas(tmp.path());
  const auto store = tmp / "store";
  write(store / "a-root.crt", read(tmp / "root.pem"));
  write(store / "notes.txt", "this is not a certificate\n");
  write(store / "empty.crt", "");
  write(store / "key.pem", read(tmp / "key.pem"));
  std::string broken = read(tmp / "inter.pem");
  broken[broken.size() / 2] = '!';
  write(store / "broken.pem", broken);
  const auto b = collect_cas({store.string()}, {});
  REQUIRE(b.certs.size() == 1);
  CHECK(b.certs[0].subject == "CN=berth test root");
  std::map<std::string, std::string> why;
  for (const auto& p : b.problems) why[fs::path(p.source).filename().string()] = p.reason;
  CHECK(why.at("notes.txt") == "is not a certificate (neither PEM nor DER)");
  CHECK(why.at("empty.crt") == "is empty, not a certificate");
  CHECK(why.at("key.pem").find("holds a PRIVATE KEY block, not a certificate") == 0);
  CHECK(why.at("broken.pem").find("OpenSSL") != std::string::npos);
  for (const auto& p : b.problems) CHECK(p.source.find(store.string()) == 0);  // the full path
  CHECK(b.pem().find("PRIVATE KEY") == std::string::npos);
}

TEST_CASE("ca_pems: inline PEMs and paths, a missing path is named") {
  berth::test::TempDir tmp("proxy-ca");
  make_cas(tmp.path());
  const auto b = collect_cas({}, {read(tmp / "inter.pem"), (tmp / "root.pem").string(), (tmp / "nope.pem").string()});
  REQUIRE(b.certs.size() == 2);
  CHECK(b.certs[0].source == "ca_pems[0]");
  CHECK(b.certs[1].source == (tmp / "root.pem").string());
  REQUIRE(b.problems.size() == 1);
  CHECK(b.problems[0].source == (tmp / "nope.pem").string());
  CHECK(b.problems[0].reason.find("does not exist") == 0);
}

TEST_CASE("a status lists the certificates of a small source and only counts a store's bundle") {
  const auto cert = [](const std::string& source, const std::string& subject) {
    CaCert c;
    c.source = source;
    c.subject = subject;
    return c;
  };
  CaBundle bundle;
  for (int i = 0; i < 17; ++i)
    bundle.certs.push_back(cert("/etc/ssl/certs/ca-certificates.crt", "CN=store " + std::to_string(i)));
  bundle.certs.push_back(cert("/usr/local/share/ca-certificates/corp.crt", "CN=corp root"));
  bundle.certs.push_back(cert("ca_pems[0]", "CN=inline"));
  const auto sources = count_sources(bundle, 16);
  REQUIRE(sources.size() == 3);
  CHECK(sources[0].source == "/etc/ssl/certs/ca-certificates.crt");
  CHECK(sources[0].count == 17);
  CHECK_FALSE(sources[0].listed);
  CHECK(sources[1].source == "/usr/local/share/ca-certificates/corp.crt");
  CHECK(sources[1].count == 1);
  CHECK(sources[1].listed);
  CHECK(sources[2].listed);
  CHECK(count_sources(bundle, 17)[0].listed);  // at the limit it is listed
}
