// The listening socket file: stale-file handling, permissions.
#pragma once

#include <string>

namespace berth::engine_proxy::detail {

// Makes `path` free to bind: creates parent directories, removes a stale socket file that nobody
// answers on. Throws std::runtime_error when another process serves it or it is not a socket.
void prepare_socket_path(const std::string& path);

// chmod to `mode`; chgrp to `group` when non-empty and the group exists (logs a warning if not).
void secure_socket_file(const std::string& path, unsigned mode, const std::string& group);

// Removes the socket file if it is still the one we bound (same inode).
void remove_socket_file(const std::string& path, unsigned long long inode);

// The inode of `path`, 0 if it does not exist.
unsigned long long socket_inode(const std::string& path);

}  // namespace berth::engine_proxy::detail
