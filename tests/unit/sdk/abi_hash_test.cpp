// abi.h is the contract with every plugin ever built: it must not change by
// accident. Its SHA-256 (computed by CMake at configure time) must equal the
// constant below.
#include <berth/sdk/abi.h>

#include <berth/sdk/sdk.hpp>
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "temp_dir.hpp"

namespace {
// sha256sum sdk/include/berth/sdk/abi.h
constexpr const char* kAbiHeaderSha256 = "2e4168c0fc8e38f3b9a62c19ee112ad526fd3bb45a69667940094764f2c873a2";
}  // namespace

TEST_CASE("abi.h is unchanged") {
  INFO("abi.h (" BERTH_ABI_H_PATH ") hashes to " BERTH_ABI_H_SHA256);
  if (std::string(BERTH_ABI_H_SHA256) != kAbiHeaderSha256)
    FAIL(
        "abi.h changed: if intended, bump BERTH_ABI_VERSION_MINOR (append-only) or MAJOR, and update this hash "
        "(tests/unit/sdk/abi_hash_test.cpp) to " BERTH_ABI_H_SHA256);
  CHECK(BERTH_ABI_VERSION == BERTH_ABI_MAKE(1u, 2u));
}

TEST_CASE("the ABI version travels as major.minor in one integer") {
  CHECK(BERTH_ABI_MAJOR(BERTH_ABI_MAKE(2u, 7u)) == 2u);
  CHECK(BERTH_ABI_MINOR(BERTH_ABI_MAKE(2u, 7u)) == 7u);
  CHECK(berth::abi_string(berth::abi_make(1, 99)) == "1.99");
  CHECK(berth::abi_compatible(berth::abi_make(1, 2), berth::abi_make(1, 0)));
  CHECK(berth::abi_compatible(berth::abi_make(1, 2), berth::abi_make(1, 2)));
  CHECK_FALSE(berth::abi_compatible(berth::abi_make(1, 0), berth::abi_make(1, 99)));
  CHECK_FALSE(berth::abi_compatible(berth::abi_make(1, 0), berth::abi_make(2, 0)));
  CHECK_FALSE(berth::abi_compatible(berth::abi_make(2, 0), berth::abi_make(1, 0)));
}

TEST_CASE("berth_add_plugin() writes the SDK's ABI into the manifest beside the library") {
  auto path = berth::test::binary_dir() / "fixtures/plugins/hello/hello.feature.plugin.json";
  auto manifest = nlohmann::json::parse(std::ifstream(path));
  CHECK(manifest["abi"] == berth::abi_string(berth::kAbiVersion));
  CHECK(manifest["library"] == "hello_feature.so");
  CHECK(manifest["id"] == "hello.feature");
}

TEST_CASE("StringOut collects what the callee sets") {
  berth::StringOut out;
  berth_out_set(out.get(), berth::to_berth_str("hello"));
  CHECK(out.value() == "hello");
  berth_out_set(out.get(), berth_str{nullptr, 0});
  CHECK(out.value().empty());
  berth_out_set(nullptr, berth::to_berth_str("ignored"));  // a NULL out is allowed
}
