// The C++ handles over backends, features and engine filters.
#include <catch2/catch.hpp>

#include "recorder.hpp"

using namespace berth::plugin_host;
using berth::test::fixture_dir;
using berth::test::Recorder;
using berth::test::TempDir;

TEST_CASE(
    "a backend handle wraps every backend call, a broken answer marks the backend failed, a failed start does not") {
  TempDir tmp("berth-ph");
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({fixture_dir("backend-echo"), fixture_dir("hello")});
  host.start_all();
  REQUIRE(host.backends().size() == 1);
  CHECK(host.features().size() == 1);
  auto echo = host.backend("fixture.backend-echo");
  auto probe = echo->probe({{"os", "linux"}});
  CHECK(probe["supported"] == true);
  CHECK(probe["priority"] == 7);
  CHECK(echo->probe({{"os", "windows"}})["supported"] == false);

  std::vector<std::pair<double, std::string>> progress;
  echo->env_start({{"data", "/x"}}, [&](double f, std::string_view m) { progress.emplace_back(f, std::string(m)); });
  REQUIRE(progress.size() == 2);
  CHECK(progress[1] == std::make_pair(1.0, std::string("running")));
  CHECK(echo->env_status()["state"] == "running");
  CHECK(echo->agent_endpoint()["unix"] == "/nonexistent/echo-agent.sock");
  CHECK(echo->engine_endpoint()["unix"] == "/nonexistent/echo-docker.sock");
  echo->cleanup_stale(nlohmann::json::object());
  CHECK(rec.count_log("echo: nothing stale") == 1);
  echo->env_stop();
  CHECK(echo->env_status()["state"] == "stopped");

  try {
    echo->env_start({{"fail", true}});
    FAIL("env_start should have thrown");
  } catch (const PluginCallError& e) {
    CHECK(e.plugin_id() == "fixture.backend-echo");
    CHECK(std::string(e.what()) == "echo: env_start asked to fail");
  }
  // An environment that cannot start is an answer, not a broken plugin: it stays usable.
  CHECK(host.get("fixture.backend-echo").state == PluginState::active);
  echo->env_start({{"data", "/x"}});
  CHECK(echo->env_status()["state"] == "running");
  echo->env_stop();

  try {
    (void)echo->probe({{"os", "broken"}});
    FAIL("a probe answer that is not JSON should have thrown");
  } catch (const PluginCallError& e) {
    CHECK(std::string(e.what()).find("probe returned invalid JSON") != std::string::npos);
  }
  auto info = host.get("fixture.backend-echo");
  CHECK(info.state == PluginState::failed);
  CHECK(info.reason.find("probe returned invalid JSON") != std::string::npos);
  CHECK(host.get("hello.feature").state == PluginState::active);
  try {
    host.backend("fixture.backend-echo");
    FAIL("a failed backend has no handle");
  } catch (const PluginHostError& e) {
    CHECK(e.status() == 409);
  }
  CHECK(host.backends().empty());
}

TEST_CASE(
    "hand-over (ABI 1.2): an SDK backend that cannot refuses, a 1.1 backend is refused without a call past its "
    "table") {
  TempDir tmp("berth-ph");
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({fixture_dir("backend-echo"), fixture_dir("abi-1-1-backend")});
  host.start_all();
  REQUIRE(host.get("fixture.abi-1-1-backend").state == PluginState::active);
  CHECK(host.get("fixture.abi-1-1-backend").abi == "1.1");

  INFO("the SDK's default: a clear refusal, and the backend stays usable");
  auto echo = host.backend("fixture.backend-echo");
  CHECK_THROWS_WITH(echo->env_hand_over(), "this backend cannot hand its environment over to the next daemon");
  CHECK(host.get("fixture.backend-echo").state == PluginState::active);

  INFO("a table from before 1.2 ends before env_hand_over: refused by the host, the plugin never called");
  auto old = host.backend("fixture.abi-1-1-backend");
  CHECK(old->env_status()["state"] == "running");
  CHECK_THROWS_WITH(old->env_hand_over(), "built for an ABI before 1.2, it cannot hand its environment over");
  CHECK(rec.count_log("abi-1-1-backend: env_hand_over called past the table's end") == 0);
  CHECK(host.get("fixture.abi-1-1-backend").state == PluginState::active);
}

TEST_CASE("feature handles reach on_engine_attached / detached") {
  TempDir tmp("berth-ph");
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({fixture_dir("hello")});
  host.start_all();
  auto features = host.features();
  REQUIRE(features.size() == 1);
  CHECK(features[0]->id() == "hello.feature");
  features[0]->engine_attached({{"backend", "wsl2"}});
  features[0]->engine_detached();
  CHECK_THROWS_AS(host.backend("hello.feature"), PluginHostError);
}

TEST_CASE("engine filters rewrite or reject requests and are dropped when their plugin stops") {
  TempDir tmp("berth-ph");
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({fixture_dir("ticker"), fixture_dir("hello")});
  host.start_all();
  auto filters = host.engine_filters();
  REQUIRE(filters.size() == 1);
  CHECK(filters[0].plugin_id() == "fixture.ticker");
  auto create = R"({"method":"POST","path":"/containers/create","body":{}})";
  CHECK(filters[0].apply(create) == std::optional<std::string>(R"({"filtered_by":"ticker"})"));
  CHECK_FALSE(filters[0].apply(R"({"method":"POST","path":"/images/create","body":{}})"));
  CHECK_THROWS_WITH(filters[0].apply(R"({"path":"/containers/create","body":{"Image":"reject-me"}})"),
                    "ticker rejects this request");
  CHECK(host.get("fixture.ticker").state == PluginState::active);  // rejecting is not failing

  host.disable("fixture.ticker");
  CHECK(host.engine_filters().empty());
  CHECK_FALSE(filters[0].apply(create));  // a held ref to a stopped filter passes requests on
}

TEST_CASE("a feature's self-check: 1.1 features answer within the deadline, a 1.0 feature loads and is not called") {
  TempDir tmp("berth-ph");
  Recorder rec;
  PluginHost host(rec.services(), tmp / "cache");
  host.discover({fixture_dir("abi-1-0"), fixture_dir("diagnose-double"), fixture_dir("hello")});
  host.start_all();
  REQUIRE(host.get("fixture.abi-1-0").state == PluginState::active);
  CHECK(host.get("fixture.abi-1-0").abi == "1.0");
  std::map<std::string, std::shared_ptr<FeatureHandle>> by_id;
  for (auto& f : host.features()) by_id[f->id()] = f;
  REQUIRE(by_id.size() == 3);

  INFO("a 1.0 feature works as before and has no self-check; the host never reads past its table");
  by_id["fixture.abi-1-0"]->engine_attached({{"backend", "wsl2"}});
  CHECK(rec.count_log("abi-1-0: attached") == 1);
  CHECK_FALSE(by_id["fixture.abi-1-0"]->diagnose(std::chrono::seconds(5)));
  CHECK(rec.count_log("abi-1-0: diagnose called past the table's end") == 0);

  INFO("an SDK feature that adds no checks answers an empty list");
  CHECK(by_id["hello.feature"]->diagnose(std::chrono::seconds(5)) == nlohmann::json::parse(R"({"checks":[]})"));

  INFO("a feature's checks come back as it gave them, and it is told the deadline");
  auto doc = by_id["fixture.diagnose-double"]->diagnose(std::chrono::milliseconds(4000));
  REQUIRE(doc);
  REQUIRE((*doc)["checks"].size() == 1);
  CHECK((*doc)["checks"][0]["id"] == "double.check");
  CHECK((*doc)["checks"][0]["finding"] == "given 4000 ms");

  INFO("a throw, a document without checks and a late answer are errors that name the plugin, not failures");
  rec.set_settings("fixture.diagnose-double", {{"mode", "throw"}});
  CHECK_THROWS_WITH(by_id["fixture.diagnose-double"]->diagnose(std::chrono::seconds(5)),
                    "diagnose-double: asked to throw");
  rec.set_settings("fixture.diagnose-double", {{"mode", "garbage"}});
  CHECK_THROWS_WITH(by_id["fixture.diagnose-double"]->diagnose(std::chrono::seconds(5)),
                    Catch::Contains("without a \"checks\" array"));
  rec.set_settings("fixture.diagnose-double", {{"mode", "late"}});
  try {
    (void)by_id["fixture.diagnose-double"]->diagnose(std::chrono::milliseconds(200));
    FAIL("a late answer should have thrown");
  } catch (const PluginCallError& e) {
    CHECK(e.plugin_id() == "fixture.diagnose-double");
    CHECK(std::string(e.what()) == "no answer within 200 ms");
  }
  CHECK(host.get("fixture.diagnose-double").state == PluginState::active);
  // Stopping waits for the late call still running in the plugin.
  host.disable("fixture.diagnose-double");
  CHECK(host.get("fixture.diagnose-double").state != PluginState::active);
}
