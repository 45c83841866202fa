#include "store/store.hpp"
#include "store/guarded.hpp"

#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>

namespace starling::store {
namespace {

constexpr int kSchemaVersion = 4;

// Each entry moves the schema from version i to i+1.
constexpr const char* kMigrations[] = {
    R"sql(
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE receive_connectors (name TEXT PRIMARY KEY COLLATE NOCASE, properties TEXT NOT NULL);
    CREATE TABLE accepted_domains (name TEXT PRIMARY KEY COLLATE NOCASE);
    CREATE TABLE certificates (
      thumbprint TEXT PRIMARY KEY,
      certificate_pem TEXT NOT NULL,
      key_pem TEXT NOT NULL DEFAULT '',
      services INTEGER NOT NULL DEFAULT 0,
      friendly_name TEXT NOT NULL DEFAULT '',
      private_key_exportable INTEGER NOT NULL DEFAULT 0,
      root_ca_type TEXT NOT NULL DEFAULT 'None',
      added_at INTEGER NOT NULL DEFAULT (strftime('%s','now')));
    INSERT INTO settings VALUES ('generation', '0');
    )sql",
    R"sql(
    ALTER TABLE certificates ADD COLUMN request_pem TEXT NOT NULL DEFAULT '';
    CREATE TABLE send_connectors (name TEXT PRIMARY KEY COLLATE NOCASE, properties TEXT NOT NULL);
    CREATE TABLE trusted_roots (thumbprint TEXT PRIMARY KEY, certificate_pem TEXT NOT NULL);
    CREATE TABLE role_assignments (
      role TEXT NOT NULL, principal_kind TEXT NOT NULL, principal TEXT NOT NULL,
      PRIMARY KEY (role, principal_kind, principal));
    CREATE TABLE events (
      record INTEGER PRIMARY KEY AUTOINCREMENT,
      time INTEGER NOT NULL, event_id INTEGER NOT NULL, level TEXT NOT NULL,
      category TEXT NOT NULL, name TEXT NOT NULL, message TEXT NOT NULL,
      data TEXT NOT NULL, object TEXT NOT NULL);
    CREATE INDEX events_by_id ON events (event_id, time);
    )sql",
    // Accepted domain types and delivery targets; recipients. The default domain of an older
    // store is the one it used: the default_accepted_domain setting, else the first by name.
    R"sql(
    ALTER TABLE accepted_domains ADD COLUMN domain_type TEXT NOT NULL DEFAULT 'Authoritative';
    ALTER TABLE accepted_domains ADD COLUMN is_default INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE accepted_domains ADD COLUMN delivery_target TEXT NOT NULL DEFAULT 'Maildir';
    UPDATE accepted_domains SET is_default = 1 WHERE name = COALESCE(
      (SELECT a.name FROM accepted_domains a JOIN settings s
         ON s.key = 'default_accepted_domain' AND a.name = s.value COLLATE NOCASE),
      (SELECT name FROM accepted_domains ORDER BY name LIMIT 1));
    CREATE TABLE mailboxes (name TEXT PRIMARY KEY COLLATE NOCASE, properties TEXT NOT NULL);
    CREATE TABLE distribution_groups (name TEXT PRIMARY KEY COLLATE NOCASE, properties TEXT NOT NULL);
    CREATE TABLE recipient_addresses (
      address TEXT PRIMARY KEY COLLATE NOCASE,
      kind TEXT NOT NULL,                 -- 'Mailbox' or 'DistributionGroup'
      name TEXT NOT NULL COLLATE NOCASE);
    CREATE INDEX recipient_addresses_by_name ON recipient_addresses (kind, name);
    )sql",
    // Events are pruned by age after every insert: the oldest are found by time, not by a scan.
    R"sql(
    CREATE INDEX events_by_time ON events (time);
    )sql",
};
static_assert(std::size(kMigrations) == kSchemaVersion);

template <typename T>
Result<std::vector<T>> read_json_table(SQLite::Database& db, const char* sql) {
  return guarded([&]() -> Result<std::vector<T>> {
    std::vector<T> out;
    SQLite::Statement q(db, sql);
    while (q.executeStep()) {
      out.push_back(nlohmann::ordered_json::parse(q.getColumn(0).getString()).get<T>());
    }
    return out;
  });
}

}  // namespace

Store::Store(const std::filesystem::path& file, int flags) : db_(file.string(), flags, 5000) {
  db_.exec("PRAGMA journal_mode=WAL");
  db_.exec("PRAGMA synchronous=FULL");
}

Result<std::unique_ptr<Store>> Store::create(const std::filesystem::path& file) {
  // Create the file ourselves, exclusively and with mode 0600, before SQLite opens it.
  int fd = ::open(file.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) {
    return make_error("cannot create " + file.string() + ": " + std::strerror(errno));
  }
  ::close(fd);
  return guarded([&]() -> Result<std::unique_ptr<Store>> {
    std::unique_ptr<Store> s(new Store(file, SQLite::OPEN_READWRITE));
    if (auto m = s->migrate(); !m) return std::move(m).take_error();
    return s;
  });
}

Result<std::unique_ptr<Store>> Store::open(const std::filesystem::path& file) {
  if (!std::filesystem::exists(file)) {
    return make_error("no store at " + file.string() + " (run 'starling setup' first)");
  }
  return guarded([&]() -> Result<std::unique_ptr<Store>> {
    std::unique_ptr<Store> s(new Store(file, SQLite::OPEN_READWRITE));
    if (auto m = s->migrate(); !m) return std::move(m).take_error();
    return s;
  });
}

Result<void> Store::migrate() {
  return guarded([&]() -> Result<void> {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    int version = db_.execAndGet("PRAGMA user_version").getInt();
    if (version > kSchemaVersion) {
      return make_error("the store was written by a newer Starling (schema " +
                        std::to_string(version) + ")");
    }
    if (version == kSchemaVersion) return {};
    for (; version < kSchemaVersion; ++version) db_.exec(kMigrations[version]);
    db_.exec("PRAGMA user_version=" + std::to_string(kSchemaVersion));
    tx.commit();
    return {};
  });
}

Result<void> Store::in_transaction(const std::function<Result<void>()>& f) {
  if (in_transaction_) return f();
  return guarded([&]() -> Result<void> {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    in_transaction_ = true;
    changed_ = false;
    Result<void> r = make_error("interrupted");
    try {
      r = f();
    } catch (...) {
      in_transaction_ = false;
      throw;
    }
    in_transaction_ = false;
    if (!r) return r;  // the Transaction's destructor rolls back
    if (changed_) {
      db_.exec("UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'");
    }
    tx.commit();
    return {};
  });
}

Result<void> Store::write(const std::function<void()>& f) {
  if (in_transaction_) {
    return guarded([&]() -> Result<void> {
      f();
      changed_ = true;
      return {};
    });
  }
  return in_transaction([&]() -> Result<void> { return write(f); });
}

Result<int64_t> Store::generation() {
  return guarded([&]() -> Result<int64_t> {
    return static_cast<int64_t>(
        std::stoll(db_.execAndGet("SELECT value FROM settings WHERE key='generation'").getString()));
  });
}

Result<std::optional<std::string>> Store::setting(const std::string& key) {
  return guarded([&]() -> Result<std::optional<std::string>> {
    SQLite::Statement q(db_, "SELECT value FROM settings WHERE key = ?");
    q.bind(1, key);
    if (!q.executeStep()) return std::optional<std::string>{};
    return std::optional<std::string>(q.getColumn(0).getString());
  });
}

Result<void> Store::set_setting(const std::string& key, const std::string& value) {
  return write([&] {
    SQLite::Statement q(db_, "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)");
    q.bind(1, key);
    q.bind(2, value);
    q.exec();
  });
}

Result<core::TransportSettings> Store::transport_settings() {
  auto text = setting("transport_server");
  if (!text) return std::move(text).take_error();
  if (!*text) return core::TransportSettings{};
  return guarded([&]() -> Result<core::TransportSettings> {
    core::TransportSettings s;
    from_json(nlohmann::ordered_json::parse(**text), s);  // keys absent from the JSON keep their defaults
    return s;
  });
}

Result<void> Store::set_transport_settings(const core::TransportSettings& s) {
  return set_setting("transport_server", nlohmann::ordered_json(s).dump());
}

Result<core::ServerSettings> Store::server_settings() {
  return guarded([&]() -> Result<core::ServerSettings> {
    core::ServerSettings s;
    SQLite::Statement q(db_, "SELECT key, value FROM settings");
    while (q.executeStep()) {
      std::string key = q.getColumn(0).getString();
      std::string value = q.getColumn(1).getString();
      if (key == "server_name") s.server_name = value;
      else if (key == "fqdn") s.fqdn = value;
      else if (key == "admin_group") s.admin_group = value;
      else if (key == "mode") s.mode = value;
    }
    if (s.server_name.empty() || s.fqdn.empty()) {
      return make_error("the store has no server name or FQDN (incomplete setup)");
    }
    return s;
  });
}

Result<void> Store::set_server_settings(const core::ServerSettings& s) {
  return in_transaction([&]() -> Result<void> {
    for (auto [k, v] : {std::pair{"server_name", &s.server_name}, {"fqdn", &s.fqdn},
                        {"admin_group", &s.admin_group}, {"mode", &s.mode}}) {
      if (auto r = set_setting(k, *v); !r) return r;
    }
    return {};
  });
}

// --- connectors ------------------------------------------------------------------------------

Result<std::vector<core::ReceiveConnector>> Store::receive_connectors() {
  return read_json_table<core::ReceiveConnector>(
      db_, "SELECT properties FROM receive_connectors ORDER BY name");
}

Result<void> Store::add_receive_connector(const core::ReceiveConnector& c) {
  return write([&] {
    SQLite::Statement q(db_, "INSERT INTO receive_connectors (name, properties) VALUES (?, ?)");
    q.bind(1, c.name);
    q.bind(2, nlohmann::ordered_json(c).dump());
    q.exec();
  });
}

Result<void> Store::replace_receive_connector(const std::string& name, const core::ReceiveConnector& c) {
  return write([&] {
    SQLite::Statement q(db_, "UPDATE receive_connectors SET name = ?, properties = ? WHERE name = ?");
    q.bind(1, c.name);
    q.bind(2, nlohmann::ordered_json(c).dump());
    q.bind(3, name);
    if (q.exec() != 1) throw std::runtime_error("no receive connector named " + name);
  });
}

Result<bool> Store::remove_receive_connector(const std::string& name) {
  bool found = false;
  auto r = write([&] {
    SQLite::Statement q(db_, "DELETE FROM receive_connectors WHERE name = ?");
    q.bind(1, name);
    found = q.exec() == 1;
  });
  if (!r) return std::move(r).take_error();
  return found;
}

Result<std::vector<core::SendConnector>> Store::send_connectors() {
  return read_json_table<core::SendConnector>(db_, "SELECT properties FROM send_connectors ORDER BY name");
}

Result<void> Store::add_send_connector(const core::SendConnector& c) {
  return write([&] {
    SQLite::Statement q(db_, "INSERT INTO send_connectors (name, properties) VALUES (?, ?)");
    q.bind(1, c.name);
    q.bind(2, nlohmann::ordered_json(c).dump());
    q.exec();
  });
}

Result<void> Store::replace_send_connector(const std::string& name, const core::SendConnector& c) {
  return write([&] {
    SQLite::Statement q(db_, "UPDATE send_connectors SET name = ?, properties = ? WHERE name = ?");
    q.bind(1, c.name);
    q.bind(2, nlohmann::ordered_json(c).dump());
    q.bind(3, name);
    if (q.exec() != 1) throw std::runtime_error("no send connector named " + name);
  });
}

Result<bool> Store::remove_send_connector(const std::string& name) {
  bool found = false;
  auto r = write([&] {
    SQLite::Statement q(db_, "DELETE FROM send_connectors WHERE name = ?");
    q.bind(1, name);
    found = q.exec() == 1;
  });
  if (!r) return std::move(r).take_error();
  return found;
}

// --- accepted domains ------------------------------------------------------------------------

Result<std::vector<std::string>> Store::accepted_domains() {
  return guarded([&]() -> Result<std::vector<std::string>> {
    std::vector<std::string> out;
    SQLite::Statement q(db_, "SELECT name FROM accepted_domains ORDER BY name");
    while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    return out;
  });
}

Result<void> Store::add_accepted_domain(const std::string& domain) {
  return write([&] {
    SQLite::Statement q(db_, "INSERT INTO accepted_domains (name) VALUES (?)");
    q.bind(1, domain);
    q.exec();
  });
}

Result<bool> Store::remove_accepted_domain(const std::string& domain) {
  bool found = false;
  auto r = write([&] {
    SQLite::Statement q(db_, "DELETE FROM accepted_domains WHERE name = ?");
    q.bind(1, domain);
    found = q.exec() == 1;
  });
  if (!r) return std::move(r).take_error();
  return found;
}

// --- roles -----------------------------------------------------------------------------------

Result<std::vector<RoleAssignment>> Store::role_assignments() {
  return guarded([&]() -> Result<std::vector<RoleAssignment>> {
    std::vector<RoleAssignment> out;
    SQLite::Statement q(db_, "SELECT role, principal_kind, principal FROM role_assignments "
                             "ORDER BY role, principal_kind, principal");
    while (q.executeStep()) {
      out.push_back({q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getString()});
    }
    return out;
  });
}

Result<void> Store::add_role_assignment(const RoleAssignment& r) {
  return write([&] {
    SQLite::Statement q(db_, "INSERT INTO role_assignments VALUES (?, ?, ?)");
    q.bind(1, r.role);
    q.bind(2, r.principal_kind);
    q.bind(3, r.principal);
    q.exec();
  });
}

Result<bool> Store::remove_role_assignment(const RoleAssignment& r) {
  bool found = false;
  auto res = write([&] {
    SQLite::Statement q(db_, "DELETE FROM role_assignments WHERE role = ? AND principal_kind = ? "
                             "AND principal = ?");
    q.bind(1, r.role);
    q.bind(2, r.principal_kind);
    q.bind(3, r.principal);
    found = q.exec() == 1;
  });
  if (!res) return std::move(res).take_error();
  return found;
}

}  // namespace starling::store
