#include "berth/packs/sha256.hpp"

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>

#include "temp_dir.hpp"

using berth::packs::Sha256;

TEST_CASE("sha256 matches the FIPS 180-4 test vectors") {
  CHECK(Sha256::hex_of("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Sha256::hex_of("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Sha256::hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(
      Sha256::hex_of("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrs"
                     "mnopqrstnopqrstu") == "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
  Sha256 million;
  const std::string chunk(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.update(chunk);
  CHECK(Sha256::hex(million.finish()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // reset() starts over; the object is usable again after finish().
  million.reset();
  million.update("abc");
  CHECK(Sha256::hex(million.finish()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("sha256 streamed in any split agrees with one update, for every length around the block size") {
  std::mt19937 rng(42);
  std::string data(1200, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  for (std::size_t len = 0; len <= data.size(); len += (len < 200 ? 1 : 37)) {
    const std::string_view piece(data.data(), len);
    const std::string whole = Sha256::hex_of(piece);
    Sha256 streamed;
    for (std::size_t pos = 0; pos < len;) {
      const std::size_t n = std::min<std::size_t>(len - pos, 1 + rng() % 100);
      streamed.update(piece.substr(pos, n));
      pos += n;
    }
    REQUIRE(Sha256::hex(streamed.finish()) == whole);
  }
  // A moved-from hasher's state goes with it.
  Sha256 a;
  a.update("ab");
  Sha256 b = std::move(a);
  b.update("c");
  CHECK(Sha256::hex(b.finish()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("sha256 of a file agrees with sha256sum") {
  berth::test::TempDir dir;
  const auto file = dir / "data.bin";
  {
    std::ofstream out(file, std::ios::binary);
    std::mt19937 rng(7);
    for (int i = 0; i < 3 * 1024 * 1024 + 17; ++i) out.put(static_cast<char>(rng()));
  }
  const std::string command = "sha256sum '" + file.string() + "'";
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[65] = {};
  REQUIRE(std::fread(buf, 1, 64, pipe) == 64);
  ::pclose(pipe);
  CHECK(Sha256::hex_of_file(file) == std::string(buf, 64));
  CHECK_THROWS_AS(Sha256::hex_of_file(dir / "absent"), std::system_error);
}
