#include "berth/engine_proxy/request_body.hpp"

#include <catch2/catch.hpp>

#include "berth/engine_proxy/create_rewrite.hpp"

using namespace berth::engine_proxy;

namespace {
int status_of(const std::string& text, int invalid_status = 400) {
  try {
    read_request_body(text, invalid_status);
    return 0;
  } catch (const RequestRejected& e) {
    return e.status();
  } catch (const std::exception& e) {
    FAIL("not a RequestRejected: " << e.what());
    return -1;
  }
}
}  // namespace

TEST_CASE("read_request_body reads an ordinary create body") {
  const auto body = read_request_body(R"({"Image":"x","HostConfig":{"Binds":["/a:/b"]},"Labels":{"a":"1","A":"2"}})");
  CHECK(body["HostConfig"]["Binds"][0] == "/a:/b");
  CHECK(body["Labels"].size() == 2);  // map keys differing in case are two labels, as in Go
  CHECK(read_request_body(" {}\n").is_object());
}

TEST_CASE("read_request_body refuses what the filter cannot read with 400") {
  CHECK(status_of("") == 400);
  CHECK(status_of("  \r\n") == 400);
  CHECK(status_of("{") == 400);
  CHECK(status_of("not json") == 400);
  CHECK(status_of(R"({"Image":"x"} {"HostConfig":{"Binds":["/run/berth:/x"]}})") == 400);  // trailing document
  CHECK(status_of(R"(["HostConfig"])") == 400);
  CHECK(status_of("null") == 400);
  // A number the parser cannot hold (found by fuzzing: it escaped as another exception).
  CHECK(status_of(R"({"Memory": 4E444444444})") == 400);
  CHECK(status_of(R"({"Memory": 4E444444444})", 500) == 500);
}

TEST_CASE("read_request_body refuses a key given twice, at any depth, with 400") {
  CHECK(status_of(R"({"HostConfig":{"Binds":["/run/berth:/x"]},"HostConfig":{}})") == 400);
  CHECK(status_of(R"({"HostConfig":{"Binds":["/run/berth:/x"],"Binds":[]}})") == 400);
  CHECK(status_of(R"({"DriverOpts":{"device":"/run/berth","device":"/tmp","o":"bind"}})") == 400);
  try {
    read_request_body(R"({"HostConfig":{"Binds":[],"Binds":[]}})");
    FAIL("accepted");
  } catch (const RequestRejected& e) {
    CHECK_THAT(e.what(), Catch::Contains("Binds") && Catch::Contains("twice"));
  }
}

TEST_CASE("read_request_body answers what the engine refuses too in the engine's own status class") {
  // dockerd 20.10 answers an empty or undecodable container create with 500.
  CHECK(status_of("", 500) == 500);
  CHECK(status_of("{\"Image\": ", 500) == 500);
  CHECK(status_of("[]", 500) == 500);
  // What dockerd would take, berth refuses as the client's fault.
  CHECK(status_of(R"({"Image":"x"} {"HostConfig":{}})", 500) == 400);
  CHECK(status_of(R"({"Image":"x","Image":"y"})", 500) == 400);
}
