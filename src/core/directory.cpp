// Resolving an address against the recipients and accepted domains (docs/mailbox-delivery.md).
// Everything here is pure: a Directory is built once from the store and only read afterwards,
// so any number of threads may resolve against the same one.
#include "core/directory.hpp"

#include <charconv>
#include <set>

#include "core/ip_range.hpp"
#include "core/names.hpp"

namespace starling::core {
namespace {

// atext of RFC 5322 §3.2.3, without the letters and digits.
bool is_atext(unsigned char c) {
  static constexpr std::string_view kSpecials = "!#$%&'*+-/=?^_`{|}~";
  return std::isalnum(c) || kSpecials.find(static_cast<char>(c)) != std::string_view::npos;
}

bool is_dot_atom(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '.') {
      if (s[i + 1] == '.') return false;
    } else if (!is_atext(c)) {
      return false;
    }
  }
  return true;
}

Result<uint16_t> parse_port(std::string_view text, std::string_view whole) {
  unsigned v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || p != text.data() + text.size() || v == 0 || v > 65535) {
    return make_error("DeliveryTarget '" + std::string(whole) + "': the port must be 1-65535");
  }
  return static_cast<uint16_t>(v);
}

}  // namespace

std::string_view domain_type_name(DomainType t) {
  switch (t) {
    case DomainType::kAuthoritative: return "Authoritative";
    case DomainType::kInternalRelay: return "InternalRelay";
    case DomainType::kExternalRelay: return "ExternalRelay";
  }
  return "Authoritative";
}

std::optional<DomainType> parse_domain_type(std::string_view text) {
  for (DomainType t : {DomainType::kAuthoritative, DomainType::kInternalRelay, DomainType::kExternalRelay}) {
    if (iequals(text, domain_type_name(t))) return t;
  }
  return std::nullopt;
}

Result<DeliveryTarget> parse_delivery_target(std::string_view text) {
  const std::string whole(text);
  if (iequals(text, "Maildir")) return DeliveryTarget{};
  const std::string_view usage = "Maildir, lmtp:HOST:PORT, lmtp:[IPv6]:PORT or lmtp:/path/to/socket";
  if (text.size() < 5 || !iequals(text.substr(0, 5), "lmtp:")) {
    return make_error("DeliveryTarget '" + whole + "' is not " + std::string(usage));
  }
  std::string_view rest = text.substr(5);
  DeliveryTarget t;
  if (!rest.empty() && rest.front() == '/') {
    if (rest.size() < 2 || rest.find('\0') != std::string_view::npos || rest.size() > 107) {
      return make_error("DeliveryTarget '" + whole + "': not a usable socket path (absolute, at most 107 bytes)");
    }
    t.kind = DeliveryTarget::Kind::kLmtpUnix;
    t.host = std::string(rest);
    return t;
  }
  t.kind = DeliveryTarget::Kind::kLmtpTcp;
  std::string_view host, port;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return make_error("DeliveryTarget '" + whole + "': expected lmtp:[IPv6]:PORT");
    }
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
    auto ip = parse_ip(host);
    if (!ip || host.find(':') == std::string_view::npos) {
      return make_error("DeliveryTarget '" + whole + "': '" + std::string(host) + "' is not an IPv6 address");
    }
  } else {
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || rest.find(':') != colon) {
      return make_error("DeliveryTarget '" + whole + "': expected lmtp:HOST:PORT (an IPv6 address in [ ])");
    }
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (!parse_ip(host) && !is_valid_hostname(host)) {
      return make_error("DeliveryTarget '" + whole + "': '" + std::string(host) + "' is not a host name or IP address");
    }
  }
  auto p = parse_port(port, whole);
  if (!p) return std::move(p).take_error();
  t.host = normalize_name(host);
  t.port = *p;
  return t;
}

std::string format_delivery_target(const DeliveryTarget& t) {
  switch (t.kind) {
    case DeliveryTarget::Kind::kMaildir: return "Maildir";
    case DeliveryTarget::Kind::kLmtpUnix: return "lmtp:" + t.host;
    case DeliveryTarget::Kind::kLmtpTcp:
      if (t.host.find(':') != std::string::npos) return "lmtp:[" + t.host + "]:" + std::to_string(t.port);
      return "lmtp:" + t.host + ":" + std::to_string(t.port);
  }
  return "Maildir";
}

std::optional<std::string> normalize_address(std::string_view address) {
  size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0 || at > 64) return std::nullopt;
  std::string_view local = address.substr(0, at);
  std::string_view domain = address.substr(at + 1);
  if (!is_dot_atom(local) || domain.empty() || domain.back() == '.' || !is_valid_hostname(domain)) {
    return std::nullopt;
  }
  return to_lower(address);
}

std::string_view address_domain(std::string_view address) {
  size_t at = address.rfind('@');
  return at == std::string_view::npos ? std::string_view() : address.substr(at + 1);
}

Directory::Directory(std::vector<AcceptedDomain> domains, std::vector<Mailbox> mailboxes,
                     std::vector<DistributionGroup> groups)
    : domains_(std::move(domains)), mailboxes_(std::move(mailboxes)), groups_(std::move(groups)) {
  for (auto& d : domains_) d.domain = normalize_name(d.domain);
  // The store keeps every address unique; should two recipients claim one anyway, the first
  // keeps it (try_emplace), so a lookup never depends on map order.
  for (size_t i = 0; i < mailboxes_.size(); ++i) {
    Mailbox& m = mailboxes_[i];
    m.primary_address = to_lower(m.primary_address);
    mailbox_index_.try_emplace(m.primary_address, i);
    for (auto& a : m.email_addresses) {
      a = to_lower(a);
      mailbox_index_.try_emplace(a, i);
    }
  }
  for (size_t i = 0; i < groups_.size(); ++i) {
    DistributionGroup& g = groups_[i];
    g.primary_address = to_lower(g.primary_address);
    if (!mailbox_index_.contains(g.primary_address)) group_index_.try_emplace(g.primary_address, i);
    for (auto& a : g.email_addresses) {
      a = to_lower(a);
      if (!mailbox_index_.contains(a)) group_index_.try_emplace(a, i);
    }
    for (auto& m : g.members) m = to_lower(m);
  }
}

const AcceptedDomain* Directory::domain(std::string_view name) const {
  std::string n = normalize_name(name);
  for (const auto& d : domains_) {
    if (d.domain == n) return &d;
  }
  return nullptr;
}

const AcceptedDomain* Directory::default_domain() const {
  for (const auto& d : domains_) {
    if (d.is_default) return &d;
  }
  return domains_.empty() ? nullptr : &domains_.front();
}

const Mailbox* Directory::mailbox_by_address(std::string_view address) const {
  auto it = mailbox_index_.find(to_lower(address));
  return it == mailbox_index_.end() ? nullptr : &mailboxes_[it->second];
}

const Mailbox* Directory::mailbox_by_name(std::string_view name) const {
  for (const auto& m : mailboxes_) {
    if (iequals(m.name, name)) return &m;
  }
  return nullptr;
}

const DistributionGroup* Directory::group_by_address(std::string_view address) const {
  auto it = group_index_.find(to_lower(address));
  return it == group_index_.end() ? nullptr : &groups_[it->second];
}

std::string Directory::delivery_target(const Mailbox& mailbox) const {
  if (!mailbox.delivery_target.empty()) return mailbox.delivery_target;
  const AcceptedDomain* d = domain(address_domain(mailbox.primary_address));
  return d && !d->delivery_target.empty() ? d->delivery_target : "Maildir";
}

Directory::Resolution Directory::resolve(std::string_view address) const {
  Resolution r;
  const std::string a = to_lower(address);
  const AcceptedDomain* d = domain(address_domain(a));
  if (!d) return r;  // kNotLocal; also an address without a domain (the session handles <postmaster>)
  if (d->type == DomainType::kExternalRelay) {
    r.kind = Resolution::Kind::kRelay;
    return r;
  }
  if (const Mailbox* m = mailbox_by_address(a)) {
    // A disabled mailbox still owns its addresses: its mail is refused here, never sent on
    // (relaying it from an InternalRelay domain could loop back), so it is kUnknown either way.
    if (!m->enabled) {
      r.kind = Resolution::Kind::kUnknown;
      return r;
    }
    r.kind = Resolution::Kind::kMailbox;
    r.mailbox = m;
    return r;
  }
  if (const DistributionGroup* g = group_by_address(a)) {
    r.kind = Resolution::Kind::kGroup;
    // Depth-first in member order; each group is expanded once (loops end), each recipient
    // listed once, mailboxes by their primary address; disabled mailboxes receive nothing.
    std::set<const DistributionGroup*> expanded{g};
    std::set<std::string, std::less<>> seen;
    std::vector<std::pair<const DistributionGroup*, size_t>> stack{{g, 0}};
    while (!stack.empty() && r.members.size() < kMaxGroupMembers) {
      auto& [group, next] = stack.back();
      if (next == group->members.size()) {
        stack.pop_back();
        continue;
      }
      const std::string& member = group->members[next++];
      if (const Mailbox* m = mailbox_by_address(member)) {
        if (m->enabled && seen.insert(m->primary_address).second) r.members.push_back(m->primary_address);
      } else if (const DistributionGroup* inner = group_by_address(member)) {
        if (expanded.insert(inner).second) stack.emplace_back(inner, 0);
      } else if (seen.insert(member).second) {
        r.members.push_back(member);
      }
    }
    return r;
  }
  r.kind = d->type == DomainType::kInternalRelay ? Resolution::Kind::kRelay : Resolution::Kind::kUnknown;
  return r;
}

bool Directory::may_send_as(const Mailbox& mailbox, std::string_view address) const {
  if (iequals(mailbox.primary_address, address)) return true;
  for (const auto& a : mailbox.email_addresses) {
    if (iequals(a, address)) return true;
  }
  return false;
}

}  // namespace starling::core
