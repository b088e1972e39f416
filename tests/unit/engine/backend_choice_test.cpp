// The backend choice rule alone: probes in, pick and reasons out. The texts
// are the ones `berthctl backend ls` and the engine's state reason show.
#include "berth/engine/backend_choice.hpp"

#include <catch2/catch.hpp>

using berth::engine::BackendProbe;
using berth::engine::ChoiceInput;
using berth::engine::choose_backend;
using berth::engine::fallback_reason;
using berth::engine::refuse_user_choice;

namespace {

BackendProbe usable(const std::string& name, int priority) {
  return {name, true, "ok", priority};
}
BackendProbe unusable(const std::string& name, const std::string& reason) {
  return {name, false, reason, 0};
}
using Order = std::vector<std::string>;

// The usual host: both backends can run, wsl2 ranks higher.
ChoiceInput both_usable() {
  ChoiceInput in;
  in.probes = {usable("hyperv", 10), usable("wsl2", 20)};
  return in;
}

}  // namespace

TEST_CASE("without a preference the highest-priority usable backend is picked") {
  const auto c = choose_backend(both_usable());
  CHECK(c.order == Order{"wsl2", "hyperv"});
  CHECK(c.pick() == "wsl2");
  CHECK_FALSE(c.preferred);
  CHECK(c.note.empty());
  CHECK(c.why == "the highest-priority backend that can run here");
}

TEST_CASE("equal priorities keep the plugin host's order") {
  ChoiceInput in;
  in.probes = {usable("b", 5), usable("a", 5)};
  CHECK(choose_backend(in).order == Order{"b", "a"});
}

TEST_CASE("the admin's lock wins over the user's choice, and the user cannot choose another") {
  auto in = both_usable();
  in.admin = {"hyperv", true};
  in.user = "wsl2";
  const auto c = choose_backend(in);
  CHECK(c.preferred == "hyperv");
  CHECK(c.order == Order{"hyperv", "wsl2"});
  CHECK(c.why == "locked to hyperv by the administrator");
  CHECK(c.note.empty());

  const auto refused = refuse_user_choice("wsl2", in, {});
  REQUIRE(refused);
  CHECK(refused->status == 403);
  CHECK(refused->message ==
        "the backend is locked to hyperv by the administrator (admin config backend.preferred); ask them to unlock it");
  CHECK_FALSE(refuse_user_choice("hyperv", in, {}));
}

TEST_CASE("the user's choice wins over the admin's unlocked default") {
  auto in = both_usable();
  in.admin = {"hyperv", false};
  SECTION("a user's choice") {
    in.user = "wsl2";
    const auto c = choose_backend(in);
    CHECK(c.pick() == "wsl2");
    CHECK(c.why == "your choice (berthctl backend use wsl2)");
    CHECK_FALSE(refuse_user_choice("hyperv", in, {}));
  }
  SECTION("no user's choice: the admin's default") {
    const auto c = choose_backend(in);
    CHECK(c.order == Order{"hyperv", "wsl2"});
    CHECK(c.why == "the administrator's default");
  }
}

TEST_CASE("a preferred backend that cannot run here falls to the next usable one, saying why") {
  ChoiceInput in;
  in.probes = {unusable("wsl2", "Windows build 17763 has no WSL 2"), usable("hyperv", 10)};
  in.user = "wsl2";
  const auto c = choose_backend(in);
  CHECK(c.order == Order{"hyperv"});
  CHECK(c.note == "preferred backend wsl2 is not supported here (Windows build 17763 has no WSL 2); using hyperv. ");
  CHECK(c.why == "preferred backend wsl2 is not supported here (Windows build 17763 has no WSL 2); using hyperv");

  const auto refused = refuse_user_choice("wsl2", in, {});
  REQUIRE(refused);
  CHECK(refused->status == 409);
  CHECK(refused->message == "backend wsl2 cannot run on this host: Windows build 17763 has no WSL 2");
}

TEST_CASE("a preferred backend that is not installed falls to the best usable one") {
  auto in = both_usable();
  in.admin = {"vbox", false};
  const auto c = choose_backend(in);
  CHECK(c.pick() == "wsl2");
  CHECK(c.note == "preferred backend vbox is not installed or not active; using wsl2. ");
}

TEST_CASE("without a preference, an unusable higher-ranked backend is explained") {
  ChoiceInput in;
  in.probes = {unusable("wsl2", "no user namespaces"), usable("hyperv", 10)};
  const auto c = choose_backend(in);
  CHECK(c.pick() == "hyperv");
  CHECK(c.note ==
        "not usable here: wsl2: no user namespaces; hyperv is the highest-priority backend that can run here. ");
  CHECK(c.why == "not usable here: wsl2: no user namespaces; hyperv is the highest-priority backend that can run here");
}

TEST_CASE("a failed start falls back to the next usable backend") {
  auto in = both_usable();
  in.user = "hyperv";
  const auto first = choose_backend(in);
  REQUIRE(first.order == Order{"hyperv", "wsl2"});

  in.failed = {"hyperv"};
  const auto second = choose_backend(in);
  CHECK(second.pick() == "wsl2");
  CHECK(second.note == first.note);  // what is said about the preference does not change
  CHECK(fallback_reason("hyperv", "no KVM and TCG timed out", second) ==
        "hyperv failed: no KVM and TCG timed out; falling back to wsl2");

  in.failed = {"hyperv", "wsl2"};
  const auto none = choose_backend(in);
  CHECK_FALSE(none.pick());
  CHECK(fallback_reason("wsl2", "dockerd exited", none) == "wsl2 failed: dockerd exited");
}

TEST_CASE("no usable backend at all") {
  SECTION("every backend says no") {
    ChoiceInput in;
    in.probes = {unusable("wsl2", "not root"), unusable("hyperv", "no qemu-system-x86_64")};
    in.user = "hyperv";
    const auto c = choose_backend(in);
    CHECK(c.order.empty());
    CHECK_FALSE(c.pick());
    CHECK(c.note == "no backend can run on this host: wsl2: not root; hyperv: no qemu-system-x86_64");
    CHECK(c.why == c.note);
  }
  SECTION("no backend plugin is active") {
    const auto c = choose_backend(ChoiceInput{});
    CHECK_FALSE(c.pick());
    CHECK(c.note == "no backend plugin is active (check berthctl plugins ls)");
  }
}

TEST_CASE("a swap starts only the backends it names") {
  auto in = both_usable();
  in.only = {"hyperv"};
  const auto c = choose_backend(in);
  CHECK(c.order == Order{"hyperv"});
  CHECK(c.note.empty());

  in.failed = {"hyperv"};
  CHECK_FALSE(choose_backend(in).pick());  // no fallback to a backend the swap did not name

  ChoiceInput cannot;
  cannot.probes = {usable("wsl2", 20), unusable("hyperv", "no qemu")};
  cannot.only = {"hyperv"};
  const auto refused = choose_backend(cannot);
  CHECK_FALSE(refused.pick());
  CHECK(refused.note == "hyperv cannot run on this host now (see berthctl backend ls)");
}

TEST_CASE("choosing a backend that is unknown or whose plugin is not active is refused") {
  const auto in = both_usable();
  const auto unknown = refuse_user_choice("vbox", in, {});
  REQUIRE(unknown);
  CHECK(unknown->status == 400);
  CHECK(unknown->message ==
        "no active backend named 'vbox' (active: hyperv, wsl2; see berthctl backend ls and berthctl plugins ls)");

  const auto inactive = refuse_user_choice("vbox", in, {{"berth.backend.vbox", "plugin failed: it threw"}});
  REQUIRE(inactive);
  CHECK(inactive->status == 409);
  CHECK(inactive->message ==
        "backend vbox is not running: plugin failed: it threw (berthctl plugins reload "
        "berth.backend.vbox or plugins enable berth.backend.vbox)");

  const auto none = refuse_user_choice("wsl2", ChoiceInput{}, {});
  REQUIRE(none);
  CHECK_THAT(none->message, Catch::Contains("(active: none;"));
}

TEST_CASE("backend names are the last part of the plugin id") {
  CHECK(berth::engine::backend_name("berth.backend.wsl2") == "wsl2");
  CHECK(berth::engine::backend_name("hyperv") == "hyperv");
}
