#include "images.hpp"

#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "shell.hpp"
#include "temp_dir.hpp"

namespace berth::test {

namespace fs = std::filesystem;

void make_busybox_rootfs(const fs::path& root) {
  fs::create_directories(root / "bin");
  fs::create_directories(root / "tmp");
  fs::create_directories(root / "etc");
  fs::copy_file("/bin/busybox", root / "bin/busybox", fs::copy_options::overwrite_existing);
  const auto list = sh("/bin/busybox --list");
  if (list.exit_code != 0) throw std::runtime_error("busybox --list failed: " + list.output);
  std::istringstream ss(list.output);
  for (std::string applet; std::getline(ss, applet);)
    if (!applet.empty() && applet != "busybox" && !fs::exists(root / "bin" / applet))
      fs::create_symlink("busybox", root / "bin" / applet);
}

std::string tar_of(const fs::path& dir) {
  TempDir out("bep-tar");
  const auto file = out.path() / "out.tar";
  const auto r = sh("tar --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner -C " +
                    shell_quote(dir.string()) + " -cf " + shell_quote(file.string()) + " .");
  if (r.exit_code != 0) throw std::runtime_error("tar of " + dir.string() + " failed: " + r.output);
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string pseudo_random_bytes(std::size_t n, unsigned seed) {
  std::mt19937_64 gen(seed);
  std::string out(n, '\0');
  for (std::size_t i = 0; i < n; i += 8) {
    const auto v = gen();
    for (std::size_t k = 0; k < 8 && i + k < n; ++k) out[i + k] = static_cast<char>((v >> (8 * k)) & 0xff);
  }
  return out;
}

void write_file(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

}  // namespace berth::test
