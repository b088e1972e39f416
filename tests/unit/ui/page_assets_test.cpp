// The page built into berthd is whole: every file of core/ui/page is embedded, byte for byte,
// and everything index.html and the modules load is among them (a module added to the page but
// not to core/ui/CMakeLists.txt would otherwise break the page at run time only).
#include <catch2/catch.hpp>
#include <map>
#include <regex>

#include "berth/ui/page.hpp"
#include "proc_files.hpp"
#include "temp_dir.hpp"

namespace fs = std::filesystem;

namespace {

std::map<std::string, berth::ui::PageAsset> assets_by_path() {
  std::map<std::string, berth::ui::PageAsset> out;
  for (auto& a : berth::ui::page_assets()) out.emplace(a.path, a);
  return out;
}

}  // namespace

TEST_CASE("every file of the page is embedded as it is on disk, index.html as /ui") {
  const auto assets = assets_by_path();
  const fs::path dir = berth::test::source_dir() / "core" / "ui" / "page";
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    ++files;
    const std::string name = entry.path().filename().string();
    const std::string path = name == "index.html" ? "/ui" : "/ui/" + name;
    INFO(name);
    REQUIRE(assets.count(path) == 1);
    CHECK(assets.at(path).body == berth::test::read_text_file(entry.path()));
  }
  CHECK(assets.size() == files);
  CHECK(berth::ui::page_assets().front().path == "/ui");
  CHECK(assets.at("/ui").content_type == "text/html; charset=utf-8");
  CHECK(assets.at("/ui/app.js").content_type == "text/javascript; charset=utf-8");
  CHECK(assets.at("/ui/app.css").content_type == "text/css; charset=utf-8");
}

TEST_CASE("everything the page loads is embedded, and it loads nothing from elsewhere") {
  const auto assets = assets_by_path();
  const std::regex loads(R"re((?:src|href)="([^"]+)"|from '([^']+)')re");
  for (const auto& [path, asset] : assets) {
    const std::string text(asset.body);
    for (std::sregex_iterator it(text.begin(), text.end(), loads), end; it != end; ++it) {
      std::string target = (*it)[1].matched ? (*it)[1].str() : (*it)[2].str();
      if (target.rfind("#", 0) == 0 || target == "data:,") continue;  // in-page links, the empty icon
      INFO(path << " loads " << target);
      if (target.rfind("./", 0) == 0) target = "/ui/" + target.substr(2);
      CHECK(target.rfind("/ui/", 0) == 0);  // never another host, never a CDN
      if (target.rfind("/ui/", 0) == 0) CHECK(assets.count(target) == 1);
    }
  }
}

TEST_CASE("the page's responses forbid other scripts, framing and the Referer") {
  std::map<std::string, std::string> headers;
  for (const auto& [name, value] : berth::ui::page_security_headers()) headers[name] = value;
  CHECK_THAT(headers["Content-Security-Policy"],
             Catch::Contains("default-src 'none'") && Catch::Contains("script-src 'self'") &&
                 Catch::Contains("connect-src 'self'") && Catch::Contains("frame-ancestors 'none'"));
  CHECK(headers["X-Frame-Options"] == "DENY");
  CHECK(headers["Referrer-Policy"] == "no-referrer");
}
