// The scripted sequence of Docker API calls the differential test runs against each engine.
#pragma once

#include <filesystem>
#include <string>

#include "docker_api.hpp"
#include "transcript.hpp"

namespace berth::test {

// What the script needs on the host, made once so both engines get the same bytes.
struct ScriptFixtures {
  explicit ScriptFixtures(const std::filesystem::path& dir);
  // Recreates the directories the containers bind (the script writes into them).
  void reset_share() const;

  std::filesystem::path share;  // <dir>/share dir: bind sources, with a space in the name
  std::string busybox_tar;      // a busybox root filesystem
  std::string padded_tar;       // the same plus 9 MB of random bytes: an image over 8 MiB
  std::string context_tar;      // a 5 MiB build context
};

// Runs the script against the engine API at `api`, recording every answer. Never stops early
// for an unexpected answer: it is recorded, and the comparison shows it.
Transcript run_script(DockerApi& api, const ScriptFixtures& fx);

// The requests the script means to fail (an unknown container, a missing bind source, a volume
// or propagation that cannot be mounted): any other error answer is a mistake in the script.
bool expected_to_fail(const std::string& request);

}  // namespace berth::test
