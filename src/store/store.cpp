#include "store/store.hpp"

#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

namespace starling::core {

// JSON form of a receive connector, with EXCHANGE-MODEL.md's property names.
void to_json(nlohmann::json& j, const Binding& b) { j = format_binding(b); }

void to_json(nlohmann::json& j, const ReceiveConnector& c) {
  j = nlohmann::json{
      {"Name", c.name},
      {"Bindings", c.bindings},
      {"RemoteIPRanges", c.remote_ip_ranges},
      {"Fqdn", c.fqdn},
      {"AuthMechanism", c.auth_mechanism},
      {"PermissionGroups", c.permission_groups},
      {"RequireTLS", c.require_tls},
      {"TlsCertificateName", c.tls_certificate_name},
      {"Banner", c.banner},
      {"MaxMessageSize", c.max_message_size},
      {"MaxRecipientsPerMessage", c.max_recipients_per_message},
      {"MaxHeaderSize", c.max_header_size},
      {"ConnectionTimeout", c.connection_timeout.count()},
      {"ConnectionInactivityTimeout", c.connection_inactivity_timeout.count()},
      {"MaxInboundConnection", c.max_inbound_connection},
      {"MaxInboundConnectionPerSource", c.max_inbound_connection_per_source},
      {"MaxProtocolErrors", c.max_protocol_errors},
      {"ProtocolLoggingLevel", c.protocol_logging_verbose ? "Verbose" : "None"},
      {"Enabled", c.enabled},
      {"PipeliningEnabled", c.pipelining_enabled},
      {"EightBitMimeEnabled", c.eight_bit_mime_enabled},
      {"ChunkingEnabled", c.chunking_enabled},
      {"SizeEnabled", c.size_enabled},
      {"EnhancedStatusCodesEnabled", c.enhanced_status_codes_enabled},
      {"SmtpUtf8Enabled", c.smtp_utf8_enabled},
  };
}

Binding parse_binding(const std::string& s) {
  Binding b;
  size_t colon = s.rfind(':');
  std::string host = s.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  b.address = host;
  b.port = static_cast<uint16_t>(std::stoul(s.substr(colon + 1)));
  return b;
}

void from_json(const nlohmann::json& j, ReceiveConnector& c) {
  c.name = j.at("Name").get<std::string>();
  c.bindings.clear();
  for (const auto& b : j.at("Bindings")) c.bindings.push_back(parse_binding(b.get<std::string>()));
  // Properties added in later versions keep their defaults when absent.
  auto get = [&](const char* key, auto& field) {
    if (j.contains(key)) j.at(key).get_to(field);
  };
  get("RemoteIPRanges", c.remote_ip_ranges);
  get("Fqdn", c.fqdn);
  get("AuthMechanism", c.auth_mechanism);
  get("PermissionGroups", c.permission_groups);
  get("RequireTLS", c.require_tls);
  get("TlsCertificateName", c.tls_certificate_name);
  get("Banner", c.banner);
  get("MaxMessageSize", c.max_message_size);
  get("MaxRecipientsPerMessage", c.max_recipients_per_message);
  get("MaxHeaderSize", c.max_header_size);
  if (j.contains("ConnectionTimeout")) c.connection_timeout = std::chrono::seconds(j.at("ConnectionTimeout").get<int64_t>());
  if (j.contains("ConnectionInactivityTimeout")) c.connection_inactivity_timeout = std::chrono::seconds(j.at("ConnectionInactivityTimeout").get<int64_t>());
  get("MaxInboundConnection", c.max_inbound_connection);
  get("MaxInboundConnectionPerSource", c.max_inbound_connection_per_source);
  get("MaxProtocolErrors", c.max_protocol_errors);
  if (j.contains("ProtocolLoggingLevel")) c.protocol_logging_verbose = j.at("ProtocolLoggingLevel") == "Verbose";
  get("Enabled", c.enabled);
  get("PipeliningEnabled", c.pipelining_enabled);
  get("EightBitMimeEnabled", c.eight_bit_mime_enabled);
  get("ChunkingEnabled", c.chunking_enabled);
  get("SizeEnabled", c.size_enabled);
  get("EnhancedStatusCodesEnabled", c.enhanced_status_codes_enabled);
  get("SmtpUtf8Enabled", c.smtp_utf8_enabled);
}

}  // namespace starling::core

namespace starling::store {
namespace {

constexpr int kSchemaVersion = 1;

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
};
static_assert(std::size(kMigrations) == kSchemaVersion);

template <typename F>
auto guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return make_error(std::string("store: ") + e.what());
  }
}

}  // namespace

Store::Store(const std::filesystem::path& file, int flags) : db_(file.string(), flags, 5000) {
  db_.exec("PRAGMA journal_mode=WAL");
  db_.exec("PRAGMA synchronous=FULL");
  db_.exec("PRAGMA foreign_keys=ON");
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
    for (; version < kSchemaVersion; ++version) db_.exec(kMigrations[version]);
    db_.exec("PRAGMA user_version=" + std::to_string(kSchemaVersion));
    tx.commit();
    return {};
  });
}

void Store::bump_generation() {
  db_.exec("UPDATE settings SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'");
}

Result<int64_t> Store::generation() {
  return guarded([&]() -> Result<int64_t> {
    return static_cast<int64_t>(
        std::stoll(db_.execAndGet("SELECT value FROM settings WHERE key='generation'").getString()));
  });
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
  return guarded([&]() -> Result<void> {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement q(db_, "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)");
    for (auto [k, v] : {std::pair{"server_name", &s.server_name}, {"fqdn", &s.fqdn},
                        {"admin_group", &s.admin_group}, {"mode", &s.mode}}) {
      q.bind(1, k);
      q.bind(2, *v);
      q.exec();
      q.reset();
    }
    bump_generation();
    tx.commit();
    return {};
  });
}

Result<std::vector<core::ReceiveConnector>> Store::receive_connectors() {
  return guarded([&]() -> Result<std::vector<core::ReceiveConnector>> {
    std::vector<core::ReceiveConnector> out;
    SQLite::Statement q(db_, "SELECT properties FROM receive_connectors ORDER BY name");
    while (q.executeStep()) {
      out.push_back(nlohmann::json::parse(q.getColumn(0).getString()).get<core::ReceiveConnector>());
    }
    return out;
  });
}

Result<void> Store::add_receive_connector(const core::ReceiveConnector& c) {
  return guarded([&]() -> Result<void> {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement q(db_, "INSERT INTO receive_connectors (name, properties) VALUES (?, ?)");
    q.bind(1, c.name);
    q.bind(2, nlohmann::json(c).dump());
    q.exec();
    bump_generation();
    tx.commit();
    return {};
  });
}

Result<std::vector<std::string>> Store::accepted_domains() {
  return guarded([&]() -> Result<std::vector<std::string>> {
    std::vector<std::string> out;
    SQLite::Statement q(db_, "SELECT name FROM accepted_domains ORDER BY name");
    while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    return out;
  });
}

Result<void> Store::add_accepted_domain(const std::string& domain) {
  return guarded([&]() -> Result<void> {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement q(db_, "INSERT INTO accepted_domains (name) VALUES (?)");
    q.bind(1, domain);
    q.exec();
    bump_generation();
    tx.commit();
    return {};
  });
}

Result<std::vector<StoredCertificate>> Store::certificates() {
  return guarded([&]() -> Result<std::vector<StoredCertificate>> {
    std::vector<StoredCertificate> out;
    SQLite::Statement q(db_,
                        "SELECT thumbprint, certificate_pem, key_pem, services, friendly_name, "
                        "private_key_exportable, root_ca_type FROM certificates ORDER BY added_at");
    while (q.executeStep()) {
      StoredCertificate c;
      c.thumbprint = q.getColumn(0).getString();
      c.certificate_pem = q.getColumn(1).getString();
      c.key_pem = q.getColumn(2).getString();
      c.services = static_cast<core::Services>(q.getColumn(3).getInt64());
      c.friendly_name = q.getColumn(4).getString();
      c.private_key_exportable = q.getColumn(5).getInt() != 0;
      c.root_ca_type = q.getColumn(6).getString();
      out.push_back(std::move(c));
    }
    return out;
  });
}

Result<void> Store::add_certificate(const StoredCertificate& c) {
  return guarded([&]() -> Result<void> {
    SQLite::Transaction tx(db_, SQLite::TransactionBehavior::IMMEDIATE);
    SQLite::Statement q(db_,
                        "INSERT INTO certificates (thumbprint, certificate_pem, key_pem, services, "
                        "friendly_name, private_key_exportable, root_ca_type) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)");
    q.bind(1, c.thumbprint);
    q.bind(2, c.certificate_pem);
    q.bind(3, c.key_pem);
    q.bind(4, static_cast<int64_t>(c.services));
    q.bind(5, c.friendly_name);
    q.bind(6, c.private_key_exportable ? 1 : 0);
    q.bind(7, c.root_ca_type);
    q.exec();
    bump_generation();
    tx.commit();
    return {};
  });
}

}  // namespace starling::store
