// `starling setup`: creates a new server's data directory — the store with its settings, the
// default receive connector, the accepted domains and a self-signed SMTP certificate — or
// nothing at all. (Installation, in Exchange's terms.)
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace starling::app {

struct SetupOptions {
  std::filesystem::path data_dir;
  std::string server_name;                  // default: the short host name
  std::string fqdn;                         // default: the host's FQDN
  std::vector<std::string> listen;          // default: 0.0.0.0:25
  std::vector<std::string> accepted_domains;  // default: the FQDN without its first label
  std::string admin_group = "starling-admins";
  std::string mode = "hub";
};

// Returns a human summary of what was created.
Result<std::string> run_setup(SetupOptions options);

std::string host_short_name();
std::string host_fqdn();

}  // namespace starling::app
