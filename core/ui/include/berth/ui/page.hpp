// The web page's static files, built into the binary (core/ui/page). The daemon serves them on
// the loopback TCP listener under /ui/; all the data the page shows comes from /v1.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace berth::ui {

struct PageAsset {
  std::string path;  // "/ui/app.js"; index.html is served as "/ui" (and "/ui/")
  std::string_view content_type;
  std::string_view body;
};

// Every file of the page, index.html first.
std::vector<PageAsset> page_assets();

// Headers every page response carries: scripts and styles only from the page itself, no
// framing by other sites, and no Referer (the login URL holds a code).
std::vector<std::pair<std::string, std::string>> page_security_headers();

}  // namespace berth::ui
