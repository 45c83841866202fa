#include "core/routing.hpp"

#include <algorithm>
#include <charconv>
#include <tuple>

#include "core/ip_range.hpp"
#include "core/names.hpp"

namespace starling::core {
namespace {

constexpr int kMinCost = 1;
constexpr int kMaxCost = 100;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

// Decimal digits only (no sign, no spaces): from_chars alone would accept "+" nowhere but would
// stop at the first non-digit, so "5x" must be refused here.
std::optional<int> parse_decimal(std::string_view s, int max) {
  if (s.empty() || s.size() > 6) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  int v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  if (v > max) return std::nullopt;
  return v;
}

size_t label_count(std::string_view name) {
  return static_cast<size_t>(std::count(name.begin(), name.end(), '.')) + 1;
}

Result<uint16_t> parse_port(std::string_view text, std::string_view port) {
  auto v = parse_decimal(port, 65535);
  if (!v || *v == 0) {
    return make_error("smart host " + quoted(text) + ": port " + quoted(port) +
                      " is not a number from 1 to 65535");
  }
  return static_cast<uint16_t>(*v);
}

// One connector's best address space for `domain`: (specificity, cost).
std::optional<std::pair<int, int>> best_space(const SendConnector& c, std::string_view domain) {
  std::optional<std::pair<int, int>> best;
  for (const std::string& entry : c.address_spaces) {
    // An entry that does not parse matches nothing; the configuration commands refuse such
    // entries, so this only guards against a hand-edited store.
    auto space = parse_address_space(entry);
    if (!space) continue;
    auto score = address_space_match(*space, domain);
    if (!score) continue;
    if (!best || *score > best->first || (*score == best->first && space->cost < best->second)) {
      best = std::make_pair(*score, space->cost);
    }
  }
  return best;
}

}  // namespace

Result<AddressSpace> parse_address_space(std::string_view text) {
  std::string_view s = trim(text);
  if (s.size() >= 5 && iequals(s.substr(0, 5), "smtp:")) s.remove_prefix(5);
  if (s.find(':') != std::string_view::npos) {
    return make_error("address space " + quoted(text) +
                      ": only SMTP address spaces are supported (\"[smtp:]domain[;cost]\")");
  }
  AddressSpace out;
  size_t semi = s.find(';');
  std::string_view domain = trim(s.substr(0, semi));
  if (semi != std::string_view::npos) {
    std::string_view cost = trim(s.substr(semi + 1));
    auto v = parse_decimal(cost, kMaxCost);
    if (!v || *v < kMinCost) {
      return make_error("address space " + quoted(text) + ": cost " + quoted(cost) +
                        " is not a number from 1 to 100");
    }
    out.cost = *v;
  }
  if (domain.empty()) return make_error("address space " + quoted(text) + ": no domain");
  out.domain = normalize_name(domain);
  if (out.domain == "*") return out;
  std::string_view base = out.domain;
  if (base.starts_with("*.")) base.remove_prefix(2);
  if (!is_valid_hostname(base) || base.ends_with(".")) {
    return make_error("address space " + quoted(text) + ": " + quoted(domain) +
                      " is not a domain, \"*.domain\" or \"*\"");
  }
  return out;
}

std::optional<int> address_space_match(const AddressSpace& space, std::string_view domain) {
  std::string d = normalize_name(domain);
  if (space.domain == "*") return 0;
  // Two points per label of the space's domain, plus one for an exact entry: "contoso.com"
  // (5) > "*.contoso.com" (4) > "*.com" (2) > "*" (0) for the domain contoso.com.
  if (space.domain.starts_with("*.")) {
    std::string_view base = std::string_view(space.domain).substr(2);
    bool covers = d == base || (d.size() > base.size() && std::string_view(d).ends_with(base) &&
                                d[d.size() - base.size() - 1] == '.');
    if (!covers) return std::nullopt;
    return static_cast<int>(2 * label_count(base));
  }
  if (d != space.domain) return std::nullopt;
  return static_cast<int>(2 * label_count(space.domain) + 1);
}

Route route_recipient(std::string_view domain, const std::set<std::string>& accepted,
                      const std::vector<SendConnector>& connectors) {
  std::string d = normalize_name(domain);
  Route route;
  if (accepted.contains(d)) {
    route.kind = Route::Kind::kLocal;
    return route;
  }
  const SendConnector* chosen = nullptr;
  // Ranking key, smaller is better: (-specificity, cost, lower-case name, name).
  std::tuple<int, int, std::string, std::string> chosen_key;
  for (const SendConnector& c : connectors) {
    if (!c.enabled) continue;
    auto best = best_space(c, d);
    if (!best) continue;
    auto key = std::make_tuple(-best->first, best->second, to_lower(c.name), c.name);
    if (!chosen || key < chosen_key) {
      chosen = &c;
      chosen_key = std::move(key);
    }
  }
  if (!chosen) return route;  // kNone
  route.kind = Route::Kind::kConnector;
  route.connector = chosen->name;
  if (chosen->dns_routing_enabled) {
    route.next_hop = d;
  } else {
    // The smart host list is the queue's identity (SmartHostConnectorDelivery): lower-cased
    // and trimmed so that "Relay.example.net" and "relay.example.net " share one queue.
    for (const std::string& h : chosen->smart_hosts) {
      if (!route.next_hop.empty()) route.next_hop += ',';
      route.next_hop += to_lower(trim(h));
    }
  }
  return route;
}

Result<SmartHost> parse_smart_host(std::string_view text) {
  std::string_view s = trim(text);
  if (s.empty()) return make_error("smart host " + quoted(text) + ": empty");
  SmartHost out;
  if (s.front() == '[') {
    // "[IP]" or "[IP]:port": an address literal (RFC 5321 §4.1.3), IPv4 or IPv6 without the
    // "IPv6:" tag, which SmartHosts entries do not use.
    size_t close = s.find(']');
    if (close == std::string_view::npos) {
      return make_error("smart host " + quoted(text) + ": \"[\" without \"]\"");
    }
    std::string_view ip = s.substr(1, close - 1);
    if (ip.size() >= 5 && iequals(ip.substr(0, 5), "ipv6:")) ip.remove_prefix(5);
    if (!parse_ip(ip)) {
      return make_error("smart host " + quoted(text) + ": " + quoted(ip) +
                        " is not an IPv4 or IPv6 address");
    }
    std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return make_error("smart host " + quoted(text) + ": unexpected " + quoted(rest) +
                          " after \"]\"");
      }
      auto port = parse_port(text, rest.substr(1));
      if (!port) return std::move(port).take_error();
      out.port = *port;
    }
    out.host = to_lower(ip);
    out.is_ip = true;
    return out;
  }
  size_t colon = s.find(':');
  if (colon != std::string_view::npos && s.find(':', colon + 1) != std::string_view::npos) {
    // Several colons: only a bare IPv6 address, and then no port can be told apart from it.
    if (!parse_ip(s)) {
      return make_error("smart host " + quoted(text) +
                        ": not a host name, IPv4 address or IPv6 address (write an IPv6 address "
                        "with a port as \"[2001:db8::1]:25\")");
    }
    out.host = to_lower(s);
    out.is_ip = true;
    return out;
  }
  std::string_view host = s.substr(0, colon);
  if (colon != std::string_view::npos) {
    auto port = parse_port(text, s.substr(colon + 1));
    if (!port) return std::move(port).take_error();
    out.port = *port;
  }
  if (parse_ip(host)) {  // bare IPv4; checked first since "192.0.2.7" is also LDH
    out.host = std::string(host);
    out.is_ip = true;
    return out;
  }
  if (!is_valid_hostname(host)) {
    return make_error("smart host " + quoted(text) + ": " + quoted(host) +
                      " is not a valid host name");
  }
  out.host = normalize_name(host);
  return out;
}

MxPlan plan_mx(std::string_view domain, const std::vector<MxEntry>& records, uint16_t port,
               const std::set<std::string>& local_names, std::mt19937& rng) {
  MxPlan plan;
  std::vector<HostTarget> hosts;
  if (records.empty()) {
    // RFC 5321 §5.1: no MX records -> the domain itself, as if it had one MX of preference 0.
    hosts.push_back(HostTarget{normalize_name(domain), port, 0});
  } else {
    if (records.size() == 1 && normalize_name(records[0].host).empty()) {
      plan.kind = MxPlan::Kind::kNullMx;  // RFC 7505 §3
      return plan;
    }
    for (const MxEntry& r : records) {
      std::string host = normalize_name(r.host);
      // A "." among other records breaks RFC 7505 §3 ("MUST NOT advertise any other MX"); it
      // names no host, so it is skipped and the real ones are tried.
      if (host.empty()) continue;
      hosts.push_back(HostTarget{std::move(host), port, r.preference});
    }
    std::stable_sort(hosts.begin(), hosts.end(), [](const HostTarget& a, const HostTarget& b) {
      return a.preference < b.preference;
    });
    // The same host listed twice would only be tried twice: keep its best preference.
    std::vector<HostTarget> unique;
    for (HostTarget& h : hosts) {
      bool seen = std::any_of(unique.begin(), unique.end(),
                              [&](const HostTarget& u) { return u.host == h.host; });
      if (!seen) unique.push_back(std::move(h));
    }
    hosts = std::move(unique);
    // RFC 5321 §5.1: hosts of equal preference are tried in random order to spread the load.
    for (auto first = hosts.begin(); first != hosts.end();) {
      auto last = std::find_if(first, hosts.end(), [&](const HostTarget& h) {
        return h.preference != first->preference;
      });
      std::shuffle(first, last, rng);
      first = last;
    }
  }
  // RFC 5321 §5.1: when this server is one of the MX hosts, only hosts with a strictly lower
  // preference value may be tried; none left means the mail would come back here.
  auto local = std::find_if(hosts.begin(), hosts.end(),
                            [&](const HostTarget& h) { return local_names.contains(h.host); });
  if (local != hosts.end()) {
    uint16_t limit = local->preference;  // hosts are sorted: this is the lowest local one
    hosts.erase(std::find_if(hosts.begin(), hosts.end(),
                             [&](const HostTarget& h) { return h.preference >= limit; }),
                hosts.end());
    if (hosts.empty()) {
      plan.kind = MxPlan::Kind::kLoop;
      return plan;
    }
  }
  plan.hosts = std::move(hosts);
  return plan;
}

int count_received_headers(std::string_view message) {
  int count = 0;
  size_t pos = 0;
  while (pos < message.size()) {
    size_t nl = message.find('\n', pos);
    std::string_view line = message.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? message.size() : nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // end of the header section (RFC 5322 §2.1)
    if (line.front() == ' ' || line.front() == '\t') continue;  // folded continuation
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    // RFC 5322 §4.5.3 (obsolete syntax) allows white space before the colon.
    if (iequals(trim(line.substr(0, colon)), "Received")) ++count;
  }
  return count;
}

}  // namespace starling::core
