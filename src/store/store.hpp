// The configuration store: one SQLite file (mode 0600) holding server settings, receive
// connectors, accepted domains and certificates with their private keys. Every write is one
// transaction and bumps a generation counter, so readers can tell when to re-read.
// Thread safety: one Store per thread; SQLite serializes writers across processes.
#pragma once

#include <SQLiteCpp/Database.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/certificate.hpp"
#include "core/connector.hpp"
#include "core/result.hpp"

namespace starling::store {

struct StoredCertificate {
  std::string thumbprint;
  std::string certificate_pem;  // the certificate, then any chain certificates
  std::string key_pem;          // empty when the store holds no key
  core::Services services = 0;
  std::string friendly_name;
  bool private_key_exportable = false;
  std::string root_ca_type = "None";
};

class Store {
 public:
  // Creates a new store; refuses when the file exists.
  static Result<std::unique_ptr<Store>> create(const std::filesystem::path& file);
  static Result<std::unique_ptr<Store>> open(const std::filesystem::path& file);

  Result<core::ServerSettings> server_settings();
  Result<void> set_server_settings(const core::ServerSettings& s);

  Result<std::vector<core::ReceiveConnector>> receive_connectors();
  Result<void> add_receive_connector(const core::ReceiveConnector& c);

  Result<std::vector<std::string>> accepted_domains();
  Result<void> add_accepted_domain(const std::string& domain);

  Result<std::vector<StoredCertificate>> certificates();
  Result<void> add_certificate(const StoredCertificate& c);

  // Increases with every committed change.
  Result<int64_t> generation();

  SQLite::Database& db() { return db_; }

 private:
  explicit Store(const std::filesystem::path& file, int flags);
  Result<void> migrate();
  void bump_generation();

  SQLite::Database db_;
};

}  // namespace starling::store
