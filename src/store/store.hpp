// The configuration store: one SQLite file (mode 0600) holding server settings, connectors,
// accepted domains, recipients (mailboxes with password hashes, distribution groups), certificates
// with their private keys, trusted roots, role assignments and the event log. Every recipient
// address (primary or alias, compared without case) belongs to exactly one recipient: the
// recipient_addresses table holds them all under one primary key. A management command runs in one transaction (in_transaction): all of its
// writes commit together or none do. Every committed change bumps a generation counter, so a
// reader can tell when to re-read. Thread safety: one Store per thread.
#pragma once

#include <SQLiteCpp/Database.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/certificate.hpp"
#include "core/connector.hpp"
#include "core/directory.hpp"
#include "core/result.hpp"
#include "core/transport_settings.hpp"

namespace starling::store {

struct StoredCertificate {
  std::string thumbprint;
  std::string certificate_pem;  // the certificate, then its chain; empty for a pending request
  std::string key_pem;          // empty when the store holds no key
  std::string request_pem;      // PKCS#10, for a pending request
  core::Services services = 0;
  std::string friendly_name;
  bool private_key_exportable = false;
  std::string root_ca_type = "None";
  int64_t added_at = 0;         // Unix time
};

struct RoleAssignment {
  std::string role;            // ViewOnlyAdministrator, ServerAdministrator, OrganizationAdministrator
  std::string principal_kind;  // "User" or "Group"
  std::string principal;       // Unix user or group name
};

struct EventRecord {
  int64_t record = 0;          // increasing, assigned by the store
  int64_t time = 0;            // Unix time
  int event_id = 0;
  std::string level, category, name, message;
  std::string data_json;       // the fields, as a JSON object
  std::string object;          // what the event is about (suppression key)
};

struct EventQuery {
  std::optional<int> event_id;
  std::optional<std::string> level;
  std::optional<std::string> category;
  std::optional<int64_t> since;  // Unix time
  std::optional<int64_t> after_record;  // only records numbered above this
  std::optional<int> newest;     // only the N most recent, newest first (otherwise oldest first)
};

// How long and how many events the store keeps (EventLogMaxAge, EventLogMaxCount).
struct EventRetention {
  int64_t max_age_seconds = 30 * 24 * 3600;
  int64_t max_count = 100000;
};

class Store {
 public:
  // Creates a new store; refuses when the file exists.
  static Result<std::unique_ptr<Store>> create(const std::filesystem::path& file);
  static Result<std::unique_ptr<Store>> open(const std::filesystem::path& file);

  // Runs `f` as one transaction; commits when it returns success, rolls back otherwise.
  Result<void> in_transaction(const std::function<Result<void>()>& f);

  Result<core::ServerSettings> server_settings();
  Result<void> set_server_settings(const core::ServerSettings& s);
  Result<std::optional<std::string>> setting(const std::string& key);
  Result<void> set_setting(const std::string& key, const std::string& value);

  // The transport server settings (get-/set-transport-server), kept as JSON under the settings
  // key "transport_server"; the defaults when absent. set_ does not validate (core::validate
  // is the caller's check) and bumps the generation like every configuration write.
  Result<core::TransportSettings> transport_settings();
  Result<void> set_transport_settings(const core::TransportSettings& s);

  Result<std::vector<core::ReceiveConnector>> receive_connectors();
  Result<void> add_receive_connector(const core::ReceiveConnector& c);  // refuses a duplicate name
  Result<void> replace_receive_connector(const std::string& name, const core::ReceiveConnector& c);
  Result<bool> remove_receive_connector(const std::string& name);

  Result<std::vector<core::SendConnector>> send_connectors();
  Result<void> add_send_connector(const core::SendConnector& c);
  Result<void> replace_send_connector(const std::string& name, const core::SendConnector& c);
  Result<bool> remove_send_connector(const std::string& name);

  Result<std::vector<std::string>> accepted_domains();
  Result<void> add_accepted_domain(const std::string& domain);
  Result<bool> remove_accepted_domain(const std::string& domain);
  // With their DomainType, default mark and DeliveryTarget, ordered by name. The string forms
  // above stay for the callers that need only the names (add: Authoritative, not default).
  Result<std::vector<core::AcceptedDomain>> accepted_domain_records();
  Result<void> add_accepted_domain(const core::AcceptedDomain& d);     // refuses a duplicate (any case)
  Result<void> update_accepted_domain(const core::AcceptedDomain& d);  // type and target, by domain
  Result<void> set_default_accepted_domain(const std::string& domain);  // then the only one marked

  // Recipients. Names are unique among mailboxes and groups together (any case); add_ and
  // replace_ refuse an address another recipient holds, naming it. Addresses are stored lower-case.
  Result<std::vector<core::Mailbox>> mailboxes();  // ordered by name
  Result<void> add_mailbox(const core::Mailbox& m);
  Result<void> replace_mailbox(const std::string& name, const core::Mailbox& m);
  Result<bool> remove_mailbox(const std::string& name);
  Result<std::vector<core::DistributionGroup>> distribution_groups();  // ordered by name
  Result<void> add_distribution_group(const core::DistributionGroup& g);
  Result<void> replace_distribution_group(const std::string& name, const core::DistributionGroup& g);
  Result<bool> remove_distribution_group(const std::string& name);
  // The accepted domains and recipients as one immutable snapshot (net::load_runtime).
  Result<std::shared_ptr<const core::Directory>> directory();

  Result<std::vector<StoredCertificate>> certificates();
  Result<void> add_certificate(const StoredCertificate& c);
  Result<void> update_certificate(const StoredCertificate& c);  // by thumbprint
  Result<bool> remove_certificate(const std::string& thumbprint);

  Result<std::vector<std::string>> trusted_roots();  // PEM
  Result<void> add_trusted_root(const std::string& thumbprint, const std::string& pem);

  Result<std::vector<RoleAssignment>> role_assignments();
  Result<void> add_role_assignment(const RoleAssignment& r);
  Result<bool> remove_role_assignment(const RoleAssignment& r);

  Result<int64_t> add_event(const EventRecord& e);  // returns the record number
  Result<std::vector<EventRecord>> events(const EventQuery& q);
  // Deletes the events older than max_age_seconds before `now` and all but the newest max_count.
  // Returns how many went. Cheap enough to run after every insert (both go by an index).
  Result<int64_t> prune_events(const EventRetention& keep, int64_t now);
  Result<int64_t> event_count();

  // SQLite's PRAGMA data_version: changes when another connection (another thread of the
  // daemon, or the shell with --offline) commits to the file. Commits on this connection do not
  // change it.
  Result<int64_t> data_version();

  // Increases with every committed change to the configuration (events do not count).
  Result<int64_t> generation();

  SQLite::Database& db() { return db_; }

 private:
  explicit Store(const std::filesystem::path& file, int flags);
  Result<void> migrate();
  // Replaces the address rows of one recipient; throws (inside write()) on a taken address.
  void put_addresses(std::string_view kind, const std::string& old_name, const std::string& name,
                     const std::string& primary, const std::vector<std::string>& more);
  // Runs a configuration write: inside in_transaction() as part of it, otherwise as its own
  // transaction. Either way the generation is bumped once per transaction.
  Result<void> write(const std::function<void()>& f);

  SQLite::Database db_;
  bool in_transaction_ = false;
  bool changed_ = false;
};

}  // namespace starling::store
