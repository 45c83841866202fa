// The store's recipients and accepted domain details (docs/mailbox-delivery.md). A mailbox or group is
// one JSON row; its addresses are also rows of recipient_addresses, whose primary key (without
// case) is what guarantees that every address maps to one recipient.
#include <SQLiteCpp/Statement.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "core/names.hpp"
#include "store/guarded.hpp"
#include "store/store.hpp"

namespace starling::store {
namespace {

using Json = nlohmann::ordered_json;

constexpr std::string_view kMailboxKind = "Mailbox";
constexpr std::string_view kGroupKind = "DistributionGroup";

std::vector<std::string> lower_all(const std::vector<std::string>& in) {
  std::vector<std::string> out;
  for (const auto& a : in) out.push_back(core::to_lower(a));
  return out;
}

Json to_row(const core::Mailbox& m) {
  return Json{{"Name", m.name},
              {"PrimarySmtpAddress", core::to_lower(m.primary_address)},
              {"EmailAddresses", lower_all(m.email_addresses)},
              {"PasswordHash", m.password_hash},
              {"Enabled", m.enabled},
              {"DeliveryTarget", m.delivery_target}};
}

Json to_row(const core::DistributionGroup& g) {
  return Json{{"Name", g.name},
              {"PrimarySmtpAddress", core::to_lower(g.primary_address)},
              {"EmailAddresses", lower_all(g.email_addresses)},
              {"Members", lower_all(g.members)}};
}

core::Mailbox mailbox_from(const Json& j) {
  core::Mailbox m;
  m.name = j.at("Name").get<std::string>();
  m.primary_address = j.at("PrimarySmtpAddress").get<std::string>();
  m.email_addresses = j.value("EmailAddresses", std::vector<std::string>{});
  m.password_hash = j.value("PasswordHash", std::string());
  m.enabled = j.value("Enabled", true);
  m.delivery_target = j.value("DeliveryTarget", std::string());
  return m;
}

core::DistributionGroup group_from(const Json& j) {
  core::DistributionGroup g;
  g.name = j.at("Name").get<std::string>();
  g.primary_address = j.at("PrimarySmtpAddress").get<std::string>();
  g.email_addresses = j.value("EmailAddresses", std::vector<std::string>{});
  g.members = j.value("Members", std::vector<std::string>{});
  return g;
}

// A name is unique among mailboxes and groups together: "Team" names one recipient.
void check_name_free(SQLite::Database& db, const std::string& name, const std::string& except) {
  for (const char* table : {"mailboxes", "distribution_groups"}) {
    SQLite::Statement q(db, std::string("SELECT name FROM ") + table + " WHERE name = ?");
    q.bind(1, name);
    if (q.executeStep() && !core::iequals(q.getColumn(0).getString(), except)) {
      throw std::runtime_error("a recipient named '" + q.getColumn(0).getString() + "' exists");
    }
  }
}

}  // namespace

void Store::put_addresses(std::string_view kind, const std::string& old_name, const std::string& name,
                          const std::string& primary, const std::vector<std::string>& more) {
  SQLite::Statement del(db_, "DELETE FROM recipient_addresses WHERE kind = ? AND name = ?");
  del.bind(1, std::string(kind));
  del.bind(2, old_name);
  del.exec();
  std::vector<std::string> all{primary};
  all.insert(all.end(), more.begin(), more.end());
  for (const auto& raw : all) {
    std::string a = core::to_lower(raw);
    SQLite::Statement owner(db_, "SELECT kind, name FROM recipient_addresses WHERE address = ?");
    owner.bind(1, a);
    if (owner.executeStep()) {
      std::string k = owner.getColumn(0).getString(), n = owner.getColumn(1).getString();
      if (k == kind && core::iequals(n, name)) continue;  // listed twice in one recipient
      throw std::runtime_error("the address '" + a + "' belongs to " +
                               (k == kMailboxKind ? "mailbox" : "distribution group") + " '" + n + "'");
    }
    SQLite::Statement ins(db_, "INSERT INTO recipient_addresses (address, kind, name) VALUES (?, ?, ?)");
    ins.bind(1, a);
    ins.bind(2, std::string(kind));
    ins.bind(3, name);
    ins.exec();
  }
}

// --- accepted domains ------------------------------------------------------------------------

Result<std::vector<core::AcceptedDomain>> Store::accepted_domain_records() {
  return guarded([&]() -> Result<std::vector<core::AcceptedDomain>> {
    std::vector<core::AcceptedDomain> out;
    SQLite::Statement q(db_, "SELECT name, domain_type, is_default, delivery_target FROM accepted_domains ORDER BY name");
    while (q.executeStep()) {
      core::AcceptedDomain d;
      d.domain = core::normalize_name(q.getColumn(0).getString());
      auto type = core::parse_domain_type(q.getColumn(1).getString());
      if (!type) return make_error("store: accepted domain '" + d.domain + "' has an unknown type");
      d.type = *type;
      d.is_default = q.getColumn(2).getInt() != 0;
      d.delivery_target = q.getColumn(3).getString();
      out.push_back(std::move(d));
    }
    return out;
  });
}

Result<void> Store::add_accepted_domain(const core::AcceptedDomain& d) {
  return write([&] {
    if (d.is_default) db_.exec("UPDATE accepted_domains SET is_default = 0");
    SQLite::Statement q(db_, "INSERT INTO accepted_domains (name, domain_type, is_default, delivery_target) "
                             "VALUES (?, ?, ?, ?)");
    q.bind(1, core::normalize_name(d.domain));
    q.bind(2, std::string(core::domain_type_name(d.type)));
    q.bind(3, d.is_default ? 1 : 0);
    q.bind(4, d.delivery_target.empty() ? std::string("Maildir") : d.delivery_target);
    q.exec();
  });
}

Result<void> Store::update_accepted_domain(const core::AcceptedDomain& d) {
  return write([&] {
    SQLite::Statement q(db_, "UPDATE accepted_domains SET domain_type = ?, delivery_target = ? WHERE name = ?");
    q.bind(1, std::string(core::domain_type_name(d.type)));
    q.bind(2, d.delivery_target.empty() ? std::string("Maildir") : d.delivery_target);
    q.bind(3, d.domain);
    if (q.exec() != 1) throw std::runtime_error("no accepted domain " + d.domain);
  });
}

Result<void> Store::set_default_accepted_domain(const std::string& domain) {
  return write([&] {
    SQLite::Statement q(db_, "UPDATE accepted_domains SET is_default = (name = ?)");
    q.bind(1, domain);
    q.exec();
    SQLite::Statement check(db_, "SELECT count(*) FROM accepted_domains WHERE is_default = 1");
    if (!check.executeStep() || check.getColumn(0).getInt() != 1) {
      throw std::runtime_error("no accepted domain " + domain);
    }
  });
}

// --- mailboxes -------------------------------------------------------------------------------

Result<std::vector<core::Mailbox>> Store::mailboxes() {
  return guarded([&]() -> Result<std::vector<core::Mailbox>> {
    std::vector<core::Mailbox> out;
    SQLite::Statement q(db_, "SELECT properties FROM mailboxes ORDER BY name");
    while (q.executeStep()) out.push_back(mailbox_from(Json::parse(q.getColumn(0).getString())));
    return out;
  });
}

Result<void> Store::add_mailbox(const core::Mailbox& m) {
  return write([&] {
    check_name_free(db_, m.name, "");
    SQLite::Statement q(db_, "INSERT INTO mailboxes (name, properties) VALUES (?, ?)");
    q.bind(1, m.name);
    q.bind(2, to_row(m).dump());
    q.exec();
    put_addresses(kMailboxKind, m.name, m.name, m.primary_address, m.email_addresses);
  });
}

Result<void> Store::replace_mailbox(const std::string& name, const core::Mailbox& m) {
  return write([&] {
    check_name_free(db_, m.name, name);
    SQLite::Statement q(db_, "UPDATE mailboxes SET name = ?, properties = ? WHERE name = ?");
    q.bind(1, m.name);
    q.bind(2, to_row(m).dump());
    q.bind(3, name);
    if (q.exec() != 1) throw std::runtime_error("no mailbox named " + name);
    put_addresses(kMailboxKind, name, m.name, m.primary_address, m.email_addresses);
  });
}

Result<bool> Store::remove_mailbox(const std::string& name) {
  bool found = false;
  auto r = write([&] {
    SQLite::Statement q(db_, "DELETE FROM mailboxes WHERE name = ?");
    q.bind(1, name);
    found = q.exec() == 1;
    SQLite::Statement a(db_, "DELETE FROM recipient_addresses WHERE kind = 'Mailbox' AND name = ?");
    a.bind(1, name);
    a.exec();
  });
  if (!r) return std::move(r).take_error();
  return found;
}

// --- distribution groups ---------------------------------------------------------------------

Result<std::vector<core::DistributionGroup>> Store::distribution_groups() {
  return guarded([&]() -> Result<std::vector<core::DistributionGroup>> {
    std::vector<core::DistributionGroup> out;
    SQLite::Statement q(db_, "SELECT properties FROM distribution_groups ORDER BY name");
    while (q.executeStep()) out.push_back(group_from(Json::parse(q.getColumn(0).getString())));
    return out;
  });
}

Result<void> Store::add_distribution_group(const core::DistributionGroup& g) {
  return write([&] {
    check_name_free(db_, g.name, "");
    SQLite::Statement q(db_, "INSERT INTO distribution_groups (name, properties) VALUES (?, ?)");
    q.bind(1, g.name);
    q.bind(2, to_row(g).dump());
    q.exec();
    put_addresses(kGroupKind, g.name, g.name, g.primary_address, g.email_addresses);
  });
}

Result<void> Store::replace_distribution_group(const std::string& name, const core::DistributionGroup& g) {
  return write([&] {
    check_name_free(db_, g.name, name);
    SQLite::Statement q(db_, "UPDATE distribution_groups SET name = ?, properties = ? WHERE name = ?");
    q.bind(1, g.name);
    q.bind(2, to_row(g).dump());
    q.bind(3, name);
    if (q.exec() != 1) throw std::runtime_error("no distribution group named " + name);
    put_addresses(kGroupKind, name, g.name, g.primary_address, g.email_addresses);
  });
}

Result<bool> Store::remove_distribution_group(const std::string& name) {
  bool found = false;
  auto r = write([&] {
    SQLite::Statement q(db_, "DELETE FROM distribution_groups WHERE name = ?");
    q.bind(1, name);
    found = q.exec() == 1;
    SQLite::Statement a(db_, "DELETE FROM recipient_addresses WHERE kind = 'DistributionGroup' AND name = ?");
    a.bind(1, name);
    a.exec();
  });
  if (!r) return std::move(r).take_error();
  return found;
}

Result<std::shared_ptr<const core::Directory>> Store::directory() {
  auto domains = accepted_domain_records();
  if (!domains) return std::move(domains).take_error();
  auto boxes = mailboxes();
  if (!boxes) return std::move(boxes).take_error();
  auto groups = distribution_groups();
  if (!groups) return std::move(groups).take_error();
  return std::make_shared<const core::Directory>(std::move(*domains), std::move(*boxes), std::move(*groups));
}

}  // namespace starling::store
