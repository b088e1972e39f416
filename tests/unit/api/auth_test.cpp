#include "berth/api/auth.hpp"

#include <catch2/catch.hpp>
#include <fstream>

#include "temp_dir.hpp"

using namespace berth::api;

TEST_CASE("constant_time_equals compares whole tokens") {
  CHECK(constant_time_equals("secret", "secret"));
  CHECK_FALSE(constant_time_equals("secret", "secreT"));
  CHECK_FALSE(constant_time_equals("secret", "secret2"));
  CHECK_FALSE(constant_time_equals("", "x"));
  CHECK(constant_time_equals("", ""));
}

TEST_CASE("only loopback names pass the Host check") {
  for (const char* h : {"localhost", "LOCALHOST:8080", "127.0.0.1", "127.0.0.1:1", "[::1]", "[::1]:65535"}) {
    INFO(h);
    CHECK(is_loopback_host(h));
  }
  for (const char* h : {"evil.example", "evil.example:80", "localhost.evil.example", "127.0.0.2x", "",
                        "localhost:99999", "localhost:", "[::1]x", "10.0.0.1", "127.0.0.1.nip.io"}) {
    INFO(h);
    CHECK_FALSE(is_loopback_host(h));
  }
}

TEST_CASE("TCP listen addresses must be loopback") {
  CHECK(parse_loopback_address("127.0.0.1:2375").address == "127.0.0.1");
  CHECK(parse_loopback_address("localhost:0").address == "127.0.0.1");
  CHECK(parse_loopback_address("[::1]:80").address == "::1");
  CHECK(parse_loopback_address("[::1]:80").port == 80);
  CHECK_THROWS_WITH(parse_loopback_address("0.0.0.0:2375"), Catch::Contains("non-loopback"));
  CHECK_THROWS_WITH(parse_loopback_address("192.168.1.10:2375"), Catch::Contains("non-loopback"));
  CHECK_THROWS_AS(parse_loopback_address("example.com:80"), std::invalid_argument);
  CHECK_THROWS_AS(parse_loopback_address("127.0.0.1"), std::invalid_argument);
  CHECK_THROWS_AS(parse_loopback_address("127.0.0.1:http"), std::invalid_argument);
}

TEST_CASE("TCP request checks: Host first, then Origin, then the token") {
  Request r;
  r.headers["Host"] = "evil.example";
  auto refusal = check_tcp_request(r, "tok");
  REQUIRE(refusal);
  CHECK(refusal->status == 403);

  r.headers["Host"] = "localhost:8080";
  refusal = check_tcp_request(r, "tok");
  REQUIRE(refusal);
  CHECK(refusal->status == 401);
  CHECK(refusal->headers.at(0).first == "WWW-Authenticate");

  r.headers["authorization"] = "Bearer nope";
  CHECK(check_tcp_request(r, "tok")->status == 401);
  r.headers["authorization"] = "bearer tok";
  CHECK_FALSE(check_tcp_request(r, "tok"));
  r.headers["Origin"] = "http://localhost:8080";
  CHECK(check_tcp_request(r, "tok")->status == 403);
}

TEST_CASE("token files are trimmed and an empty one is refused") {
  berth::test::TempDir dir;
  std::ofstream(dir / "token") << "  s3cret-token \n";
  std::filesystem::permissions(dir / "token", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  CHECK(read_token_file(dir / "token") == "s3cret-token");
  std::ofstream(dir / "empty") << " \n";
  std::filesystem::permissions(dir / "empty", std::filesystem::perms::owner_read);
  CHECK_THROWS_WITH(read_token_file(dir / "empty"), Catch::Contains("empty"));
  CHECK_THROWS_WITH(read_token_file(dir / "missing"), Catch::Contains("cannot read"));
}

// Anyone who can read the token can drive the API as the user: a token file
// readable by group or others is refused, not merely warned about.
TEST_CASE("a token file readable by group or others is refused") {
  namespace fs = std::filesystem;
  berth::test::TempDir dir;
  std::ofstream(dir / "token") << "s3cret-token\n";
  for (const auto extra : {fs::perms::others_read, fs::perms::group_read, fs::perms::group_write}) {
    fs::permissions(dir / "token", fs::perms::owner_read | fs::perms::owner_write | extra);
    INFO("mode " << std::oct << static_cast<unsigned>(fs::status(dir / "token").permissions()));
    CHECK_THROWS_WITH(read_token_file(dir / "token"),
                      Catch::Contains("readable by group or others") && Catch::Contains("chmod 600"));
  }
  SECTION("also through a symlink: the file it reaches is what counts") {
    fs::permissions(dir / "token", fs::perms::owner_read | fs::perms::others_read);
    fs::create_symlink(dir / "token", dir / "link");
    CHECK_THROWS_WITH(read_token_file(dir / "link"), Catch::Contains("readable by group or others"));
  }
  fs::permissions(dir / "token", fs::perms::owner_read | fs::perms::owner_write);
  CHECK(read_token_file(dir / "token") == "s3cret-token");
}
