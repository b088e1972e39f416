// Pack management without building a pack: listing, refusing a pack that is
// not installed, and the rollback's record and event.
#include "berth/engine/pack_manager.hpp"

#include <catch2/catch.hpp>

#include "berth/settings/store.hpp"
#include "temp_dir.hpp"

using berth::engine::PackManager;

namespace {

struct Fixture {
  berth::test::TempDir dir{"berth-engine-packs"};
  std::unique_ptr<berth::settings::Store> store = berth::settings::Store::open(dir.path());
  std::vector<std::pair<std::string, nlohmann::json>> events;
  PackManager packs{dir.path(), store.get(),
                    [this](const std::string& type, nlohmann::json payload) { events.emplace_back(type, payload); }};
};

}  // namespace

TEST_CASE("no pack installed: an empty list and no current pack") {
  Fixture f;
  const auto list = f.packs.list();
  CHECK(list["packs"] == nlohmann::json::array());
  CHECK(list["current"].is_null());
  CHECK(f.packs.pack_dir("27.5.1-berth2") == f.dir.path() / "packs" / "27.5.1-berth2");
  CHECK(f.packs.base_dir() == f.dir.path() / "base");
}

TEST_CASE("a pack that is not installed cannot be chosen, and the choice stays") {
  Fixture f;
  f.store->set_core("pack.current", "1.0", "test");
  try {
    f.packs.use("2.0", "test");
    FAIL("an absent pack was chosen");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()) == "pack 2.0 is not installed (see berthctl pack ls)");
  }
  CHECK(f.store->get_core("pack.current") == "1.0");
  CHECK(f.events.empty());
}

TEST_CASE("a rollback puts the previous pack back and says so") {
  Fixture f;
  f.store->set_core("pack.current", "2.0", "test");
  f.packs.rollback("2.0", "1.0");
  CHECK(f.store->get_core("pack.current") == "1.0");
  REQUIRE(f.events.size() == 1);
  CHECK(f.events[0].first == "pack.rollback");
  CHECK(f.events[0].second == nlohmann::json{{"from", "2.0"}, {"to", "1.0"}});
}
