#include <algorithm>

#include "berth/ui/page.hpp"
#include "page_table.hpp"

namespace berth::ui {

std::vector<PageAsset> page_assets() {
  std::vector<PageAsset> out;
  for (const auto& file : detail::page_files()) {
    const bool index = file.name == "index.html";
    out.push_back({index ? "/ui" : "/ui/" + std::string(file.name), file.content_type, file.body});
  }
  std::stable_partition(out.begin(), out.end(), [](const PageAsset& a) { return a.path == "/ui"; });
  return out;
}

std::vector<std::pair<std::string, std::string>> page_security_headers() {
  return {{"Content-Security-Policy",
           "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
           "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"},
          {"X-Frame-Options", "DENY"},
          {"Referrer-Policy", "no-referrer"}};
}

}  // namespace berth::ui
