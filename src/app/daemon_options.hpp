// starlingd's command line, in one place: starlingd parses it, and the man page generator reads
// the same definitions, so `starlingd --help` and starlingd(8) cannot disagree.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

namespace starling::app {

inline constexpr const char* kDefaultDataDir = "/var/lib/starling";

struct DaemonOptions {
  std::filesystem::path data_dir = kDefaultDataDir;
  double shutdown_grace_seconds = 5;
  // Memory for message content being received, across all sessions, in MiB; 0: automatic
  // (a quarter of physical memory, at most 1024 MiB). Past it, new data gets 452 4.3.1.
  uint64_t receive_memory_mib = 0;
  // Started as root: keep CAP_NET_BIND_SERVICE after dropping to the service user, so that a
  // binding added while running can still use a port below 1024.
  bool keep_net_bind_service = true;
  // I/O threads, each with its own event loop, sessions spread across them; 0: one per CPU.
  unsigned io_threads = 0;
};

inline constexpr unsigned kMostIoThreads = 256;

// The number of I/O threads `requested` means: itself, or for 0 one per CPU (at least 1).
unsigned effective_io_threads(unsigned requested);

// Adds starlingd's options (and --version) to `app`, bound to `options`.
void add_daemon_options(CLI::App& app, DaemonOptions& options);

// "starling 0.x.y" — the version both programs print.
std::string version_line(const std::string& program);

}  // namespace starling::app
