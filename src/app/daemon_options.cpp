#include "app/daemon_options.hpp"

#include <algorithm>
#include <thread>

namespace starling::app {

std::string version_line(const std::string& program) { return program + " " + STARLING_VERSION; }

void add_daemon_options(CLI::App& app, DaemonOptions& o) {
  app.description("starlingd: the Starling SMTP transport server");
  app.set_version_flag("--version", version_line("starlingd"));
  app.add_option("--data-dir", o.data_dir, "data directory made by 'starling setup'")
      ->envname("STARLING_DATA_DIR")
      ->capture_default_str();
  app.add_option("--shutdown-grace", o.shutdown_grace_seconds,
                 "seconds sessions in flight may take to finish when stopping")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--receive-memory", o.receive_memory_mib,
                 "MiB of message content held for sessions receiving, all together; past it new data "
                 "gets 452 4.3.1 (0: a quarter of physical memory, at most 1024)")
      ->check(CLI::Range(uint64_t{0}, uint64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--keep-net-bind-service", o.keep_net_bind_service,
                 "started as root: keep CAP_NET_BIND_SERVICE after dropping privileges, so that a "
                 "binding added while running may use a port below 1024")
      ->capture_default_str();
  app.add_option("--io-threads", o.io_threads,
                 "I/O threads, each with its own event loop; sessions are spread across them "
                 "(0: one per CPU)")
      ->envname("STARLING_IO_THREADS")
      ->check(CLI::Range(0u, kMostIoThreads))
      ->capture_default_str();
}

unsigned effective_io_threads(unsigned requested) {
  if (requested != 0) return requested;
  return std::max(std::thread::hardware_concurrency(), 1u);
}

}  // namespace starling::app
