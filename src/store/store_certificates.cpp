// Certificates and trusted roots in the store.
#include <SQLiteCpp/Statement.h>

#include "store/store.hpp"
#include "store/guarded.hpp"

namespace starling::store {
namespace {

void bind_certificate(SQLite::Statement& q, const StoredCertificate& c) {
  q.bind(":thumbprint", c.thumbprint);
  q.bind(":certificate_pem", c.certificate_pem);
  q.bind(":key_pem", c.key_pem);
  q.bind(":request_pem", c.request_pem);
  q.bind(":services", static_cast<int64_t>(c.services));
  q.bind(":friendly_name", c.friendly_name);
  q.bind(":exportable", c.private_key_exportable ? 1 : 0);
  q.bind(":root_ca_type", c.root_ca_type);
}

}  // namespace

Result<std::vector<StoredCertificate>> Store::certificates() {
  return guarded([&]() -> Result<std::vector<StoredCertificate>> {
    std::vector<StoredCertificate> out;
    SQLite::Statement q(db_,
                        "SELECT thumbprint, certificate_pem, key_pem, request_pem, services, "
                        "friendly_name, private_key_exportable, root_ca_type, added_at "
                        "FROM certificates ORDER BY added_at, thumbprint");
    while (q.executeStep()) {
      StoredCertificate c;
      c.thumbprint = q.getColumn(0).getString();
      c.certificate_pem = q.getColumn(1).getString();
      c.key_pem = q.getColumn(2).getString();
      c.request_pem = q.getColumn(3).getString();
      c.services = static_cast<core::Services>(q.getColumn(4).getInt64());
      c.friendly_name = q.getColumn(5).getString();
      c.private_key_exportable = q.getColumn(6).getInt() != 0;
      c.root_ca_type = q.getColumn(7).getString();
      c.added_at = q.getColumn(8).getInt64();
      out.push_back(std::move(c));
    }
    return out;
  });
}

Result<void> Store::add_certificate(const StoredCertificate& c) {
  return write([&] {
    SQLite::Statement q(db_,
                        "INSERT INTO certificates (thumbprint, certificate_pem, key_pem, request_pem, "
                        "services, friendly_name, private_key_exportable, root_ca_type) VALUES "
                        "(:thumbprint, :certificate_pem, :key_pem, :request_pem, :services, "
                        ":friendly_name, :exportable, :root_ca_type)");
    bind_certificate(q, c);
    q.exec();
  });
}

Result<void> Store::update_certificate(const StoredCertificate& c) {
  return write([&] {
    SQLite::Statement q(db_,
                        "UPDATE certificates SET certificate_pem = :certificate_pem, "
                        "key_pem = :key_pem, request_pem = :request_pem, services = :services, "
                        "friendly_name = :friendly_name, private_key_exportable = :exportable, "
                        "root_ca_type = :root_ca_type WHERE thumbprint = :thumbprint");
    bind_certificate(q, c);
    if (q.exec() != 1) throw std::runtime_error("no certificate with thumbprint " + c.thumbprint);
  });
}

Result<bool> Store::remove_certificate(const std::string& thumbprint) {
  bool found = false;
  auto r = write([&] {
    SQLite::Statement q(db_, "DELETE FROM certificates WHERE thumbprint = ?");
    q.bind(1, thumbprint);
    found = q.exec() == 1;
  });
  if (!r) return std::move(r).take_error();
  return found;
}

Result<std::vector<std::string>> Store::trusted_roots() {
  return guarded([&]() -> Result<std::vector<std::string>> {
    std::vector<std::string> out;
    SQLite::Statement q(db_, "SELECT certificate_pem FROM trusted_roots ORDER BY thumbprint");
    while (q.executeStep()) out.push_back(q.getColumn(0).getString());
    return out;
  });
}

Result<void> Store::add_trusted_root(const std::string& thumbprint, const std::string& pem) {
  return write([&] {
    SQLite::Statement q(db_, "INSERT INTO trusted_roots (thumbprint, certificate_pem) VALUES (?, ?)");
    q.bind(1, thumbprint);
    q.bind(2, pem);
    q.exec();
  });
}

// --- events (not configuration: no generation bump) -----------------------------------------

Result<int64_t> Store::add_event(const EventRecord& e) {
  return guarded([&]() -> Result<int64_t> {
    SQLite::Statement q(db_,
                        "INSERT INTO events (time, event_id, level, category, name, message, data, "
                        "object) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    q.bind(1, e.time);
    q.bind(2, e.event_id);
    q.bind(3, e.level);
    q.bind(4, e.category);
    q.bind(5, e.name);
    q.bind(6, e.message);
    q.bind(7, e.data_json);
    q.bind(8, e.object);
    q.exec();
    return db_.getLastInsertRowid();
  });
}

Result<std::vector<EventRecord>> Store::events(const EventQuery& f) {
  return guarded([&]() -> Result<std::vector<EventRecord>> {
    std::string sql =
        "SELECT record, time, event_id, level, category, name, message, data, object FROM events "
        "WHERE 1=1";
    if (f.event_id) sql += " AND event_id = :id";
    if (f.level) sql += " AND level = :level COLLATE NOCASE";
    if (f.category) sql += " AND category = :category COLLATE NOCASE";
    if (f.since) sql += " AND time >= :since";
    if (f.after_record) sql += " AND record > :after";
    // The N newest come newest first, as Get-EventLog -Newest lists them; a whole log reads
    // from its beginning.
    sql += f.newest ? " ORDER BY record DESC LIMIT :newest" : " ORDER BY record";
    SQLite::Statement q(db_, sql);
    if (f.event_id) q.bind(":id", *f.event_id);
    if (f.level) q.bind(":level", *f.level);
    if (f.category) q.bind(":category", *f.category);
    if (f.since) q.bind(":since", *f.since);
    if (f.after_record) q.bind(":after", *f.after_record);
    if (f.newest) q.bind(":newest", *f.newest);
    std::vector<EventRecord> out;
    while (q.executeStep()) {
      EventRecord e;
      e.record = q.getColumn(0).getInt64();
      e.time = q.getColumn(1).getInt64();
      e.event_id = q.getColumn(2).getInt();
      e.level = q.getColumn(3).getString();
      e.category = q.getColumn(4).getString();
      e.name = q.getColumn(5).getString();
      e.message = q.getColumn(6).getString();
      e.data_json = q.getColumn(7).getString();
      e.object = q.getColumn(8).getString();
      out.push_back(std::move(e));
    }
    return out;
  });
}

Result<int64_t> Store::prune_events(const EventRetention& keep, int64_t now) {
  return guarded([&]() -> Result<int64_t> {
    SQLite::Statement old(db_, "DELETE FROM events WHERE time < ?");
    old.bind(1, now - keep.max_age_seconds);
    int64_t gone = old.exec();
    // Records are numbered in order and only ever deleted from the oldest end.
    SQLite::Statement many(db_, "DELETE FROM events WHERE record <= (SELECT MAX(record) FROM events) - ?");
    many.bind(1, keep.max_count);
    gone += many.exec();
    return gone;
  });
}

Result<int64_t> Store::event_count() {
  return guarded([&]() -> Result<int64_t> { return db_.execAndGet("SELECT COUNT(*) FROM events").getInt64(); });
}

Result<int64_t> Store::data_version() {
  return guarded([&]() -> Result<int64_t> { return db_.execAndGet("PRAGMA data_version").getInt64(); });
}

}  // namespace starling::store
