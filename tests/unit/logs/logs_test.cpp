// The log directory's reading, merging and following, and the environment log
// mirror's copying, on real files in a temporary directory.
#include <catch2/catch.hpp>
#include <fstream>
#include <stdexcept>

#include "berth/logs/env_log_mirror.hpp"
#include "berth/logs/log_reader.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;
using namespace berth::logs;

namespace {
void append(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::app) << text;
}
std::vector<std::string> sources_of(const std::vector<LogLine>& lines) {
  std::vector<std::string> out;
  for (const auto& l : lines) out.push_back(l.source);
  return out;
}
}  // namespace

TEST_CASE("time stamps of berthd's, the mirror's and logrus' forms") {
  CHECK(parse_time("2026-12-03T07:15:23.123+0000 info  x") == 1796282123123);
  CHECK(parse_time("2026-12-03T07:15:23.123Z") == 1796282123123);
  CHECK(parse_time("2026-12-03T08:15:23.123456789+01:00") == 1796282123123);
  CHECK(parse_time("2026-12-03 07:15:23") == 1796282123000);
  CHECK_FALSE(parse_time("[   1.234] berth-init info: x"));
  CHECK_FALSE(parse_time("2026-13-03T07:15:23Z"));
  CHECK(format_time(1796282123123) == "2026-12-03T07:15:23.123Z");
  CHECK(stamp_length("2026-12-03T07:15:23.123Z dockerd says") == 25);
  CHECK(line_own_time("time=\"2026-12-03T07:15:23.123456Z\" level=info msg=\"x\"") == 1796282123123);
  CHECK_FALSE(line_own_time("no time here"));
}

TEST_CASE("since takes a time, Unix seconds or a duration before now") {
  const int64_t now = 1796282123123;
  CHECK(parse_since("2026-12-03T07:15:23Z", now) == 1796282123000);
  CHECK(parse_since("1796282123", now) == 1796282123000);
  CHECK(parse_since("90s", now) == now - 90000);
  CHECK(parse_since("10m", now) == now - 600000);
  CHECK(parse_since("2h", now) == now - 7200000);
  CHECK(parse_since("1d", now) == now - 86400000);
  CHECK_FALSE(parse_since("10x", now));
  CHECK_FALSE(parse_since("yesterday", now));
  CHECK_FALSE(parse_since("", now));
}

TEST_CASE("a berthd line's source is the plugin it names, else berthd") {
  CHECK(berthd_line_source("info  [berth.feature.vpnkit] forwarding 8080") == "berth.feature.vpnkit");
  CHECK(berthd_line_source("warn  engine is starting") == "berthd");
  CHECK(berthd_line_source("info  [not a plugin] x") == "berthd");
  CHECK(berthd_line_source("error [nodots] x") == "berthd");
}

TEST_CASE("the log directory merges every source in time order, with -n and --since") {
  berth::test::TempDir dir("berth-logs");
  append(dir / "berthd.1.log", "2026-12-03T07:00:00.000+0000 info  old daemon line\n");
  append(dir / "berthd.log",
         "2026-12-03T07:00:01.000+0000 info  daemon up\n"
         "2026-12-03T07:00:03.000+0000 info  [berth.feature.vpnkit] forwarding\n"
         "  continued without a stamp\n"
         "2026-12-03T07:00:05.000+0000 error engine failed\n");
  append(dir / "env/dockerd.log.1", "2026-12-03T07:00:00.500Z dockerd old\n");
  append(dir / "env/dockerd.log", "2026-12-03T07:00:02.000Z dockerd starting\n2026-12-03T07:00:04.000Z dockerd up\n");
  append(dir / "env/berth-init.log", "2026-12-03T07:00:01.500Z [ 0.1] berth-init info: started\n");

  LogDir logs(dir.path());
  auto all = logs.read({});
  REQUIRE(all.size() == 9);
  CHECK(sources_of(all) == std::vector<std::string>{"berthd", "dockerd", "berthd", "berth-init", "dockerd",
                                                    "berth.feature.vpnkit", "berth.feature.vpnkit", "dockerd",
                                                    "berthd"});
  CHECK(all[6].text == "  continued without a stamp");
  CHECK(all[6].time_ms == all[5].time_ms);
  CHECK(all.back().text == "error engine failed");

  LogQuery last2;
  last2.max_lines = 2;
  auto tail = logs.read(last2);
  REQUIRE(tail.size() == 2);
  CHECK(tail[0].text == "dockerd up");

  LogQuery only;
  only.sources = {"dockerd", "berth.feature.vpnkit"};
  only.since_ms = *parse_time("2026-12-03T07:00:02Z");
  CHECK(sources_of(logs.read(only)) ==
        std::vector<std::string>{"dockerd", "berth.feature.vpnkit", "berth.feature.vpnkit", "dockerd"});

  auto names = logs.sources();
  CHECK(names == std::vector<std::string>{"berth-init", "berth.feature.vpnkit", "berthd", "dockerd"});
}

TEST_CASE("following sees appended lines, new sources and the rest of a rotated file") {
  berth::test::TempDir dir("berth-logs");
  append(dir / "berthd.log", "2026-12-03T07:00:01.000+0000 info  before\n");
  LogFollower f(LogDir(dir.path()), {});
  CHECK(f.poll().empty());
  append(dir / "berthd.log", "2026-12-03T07:00:02.000+0000 info  after\n2026-12-03T07:00:03.000+0000 info  half");
  auto got = f.poll();
  REQUIRE(got.size() == 1);
  CHECK(got[0].text == "info  after");
  append(dir / "berthd.log", " line\n");
  append(dir / "env/containerd.log", "2026-12-03T07:00:04.000Z containerd up\n");
  got = f.poll();
  REQUIRE(got.size() == 2);
  CHECK(got[0].text == "info  half line");
  CHECK(got[1].source == "containerd");
  // Rotation: the old file's last lines and then the new file's.
  append(dir / "env/containerd.log", "2026-12-03T07:00:05.000Z last of old\n");
  fs::rename(dir / "env/containerd.log", dir / "env/containerd.log.1");
  append(dir / "env/containerd.log", "2026-12-03T07:00:06.000Z first of new\n");
  got = f.poll();
  REQUIRE(got.size() == 2);
  CHECK(got[0].text == "last of old");
  CHECK(got[1].text == "first of new");
}

TEST_CASE("lines_after finds the copied lines again in the next tail") {
  std::deque<std::string> seen{"a", "b", "c"};
  CHECK(lines_after({"a", "b", "c", "d", "e"}, seen) == std::vector<std::string>{"d", "e"});
  CHECK(lines_after({"b", "c", "d"}, seen) == std::vector<std::string>{"d"});            // tail starts mid-way
  CHECK(lines_after({"c", "x", "c"}, seen) == std::vector<std::string>{"x", "c"});       // the tail may start mid-way
  CHECK(lines_after({"a", "c", "x"}, seen) == std::vector<std::string>{"a", "c", "x"});  // c after a, not b
  CHECK(lines_after({"x", "y"}, seen) == std::vector<std::string>{"x", "y"});            // a new environment
  CHECK(lines_after({"a", "b", "c"}, seen).empty());
  CHECK(lines_after({"x"}, {}) == std::vector<std::string>{"x"});
}

TEST_CASE("a capped file keeps one older file and stays bounded") {
  berth::test::TempDir dir("berth-logs");
  {
    CappedFile f(dir / "x.log", 100);
    for (int i = 0; i < 50; ++i) f.append("0123456789abcdefghi\n");  // 20 bytes a line
  }
  CHECK(fs::file_size(dir / "x.log") <= 100);
  CHECK(fs::file_size(dir / "x.log.1") == 100);
  CHECK_FALSE(fs::exists(dir / "x.log.2"));
}

TEST_CASE("the mirror copies each service's new lines once, stamped, and the console file") {
  berth::test::TempDir dir("berth-logs");
  std::map<std::string, std::string> guest{{"init", "[ 0.1] berth-init info: up\n"},
                                           {"dockerd", "time=\"2026-12-03T07:00:02.5Z\" level=info msg=one\n"}};
  bool env_up = true;
  EnvLogMirror::Source src;
  src.services = [&] {
    if (!env_up) throw std::runtime_error("no environment");
    return std::vector<std::string>{"init", "dockerd"};
  };
  src.tail = [&](const std::string& s, int) { return guest.at(s); };
  src.console_path = [&] { return (dir / "console-src.log").string(); };
  append(dir / "console-src.log", "Linux version 6.1\nhalf");
  EnvLogMirror mirror(dir / "logs/env", src);
  mirror.poll_once();
  mirror.poll_once();  // nothing new: nothing copied twice
  guest["dockerd"] += "time=\"2026-12-03T07:00:03Z\" level=info msg=two\n";
  append(dir / "console-src.log", " line\n");
  env_up = false;
  mirror.poll_once();  // the environment is away: no error, nothing lost
  env_up = true;
  mirror.poll_once();

  LogDir logs(dir / "logs");
  auto all = logs.read({});
  std::vector<std::string> texts;
  for (const auto& l : all) texts.push_back(l.source + ": " + l.text);
  CHECK(std::count(texts.begin(), texts.end(), "berth-init: [ 0.1] berth-init info: up") == 1);
  CHECK(std::count(texts.begin(), texts.end(), "dockerd: time=\"2026-12-03T07:00:02.5Z\" level=info msg=one") == 1);
  CHECK(std::count(texts.begin(), texts.end(), "dockerd: time=\"2026-12-03T07:00:03Z\" level=info msg=two") == 1);
  CHECK(std::count(texts.begin(), texts.end(), "console: Linux version 6.1") == 1);
  CHECK(std::count(texts.begin(), texts.end(), "console: half line") == 1);
  // dockerd's lines keep their own time.
  auto one = std::find_if(all.begin(), all.end(),
                          [](const LogLine& l) { return l.text.find("msg=one") != std::string::npos; });
  CHECK(one->time_ms == *parse_time("2026-12-03T07:00:02.500Z"));

  // A later daemon (a new mirror) does not copy again what the environment still holds.
  EnvLogMirror again(dir / "logs/env", src);
  again.poll_once();
  CHECK(logs.read({}).size() == all.size());
}
