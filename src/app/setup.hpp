// `starling setup`: creates a new server's data directory — the store with its settings, the
// default receive connector, the client (submission) connector, the accepted domains with a
// postmaster mailbox each (RFC 5321 §4.5.1) and a self-signed SMTP certificate — or nothing at
// all. (Installation, in Exchange's terms.)
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
  std::vector<std::string> accepted_domains;  // default: the FQDN without its first label; the first is the default
  std::string submission_listen = "0.0.0.0:587";  // the "Client <server>" connector; "none": no such connector
  std::vector<std::string> mailboxes;         // more mailboxes to create (addresses at accepted domains)
  std::string admin_group = "starling-admins";
  // starlingd started as root runs as this user. Setup run as root creates it when missing and
  // gives it the data directory and the store (0600); the name is kept in the store.
  std::string service_user = "starling";
  std::string mode = "hub";
  // Also an ECDSA P-256 self-signed certificate beside the RSA one, for the same names and
  // enabled for SMTP the same way (dual certificates, docs/certificates.md).
  bool ecdsa = false;
};

// Returns a human summary of what was created.
Result<std::string> run_setup(SetupOptions options);

std::string host_short_name();
std::string host_fqdn();

}  // namespace starling::app
