// The table the generated page_assets.cpp defines (core/ui/embed_page.cmake).
#pragma once

#include <string_view>
#include <vector>

namespace berth::ui::detail {

struct PageFile {
  std::string_view name;  // "app.js": served as /ui/app.js
  std::string_view content_type;
  std::string_view body;
};

const std::vector<PageFile>& page_files();

}  // namespace berth::ui::detail
