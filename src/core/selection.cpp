#include "core/selection.hpp"

#include <algorithm>

#include "core/names.hpp"

namespace starling::core {
namespace {

// A pin needs a usable certificate; a name needs one enabled for SMTP too.
bool usable(const Certificate& c) {
  return c.limit_exceeded.empty() && !c.is_ca && c.version == 3 && c.has_private_key && c.allows_tls_server;
}
bool qualifies(const Certificate& c) { return usable(c) && has_service(c.services, Service::kSmtp); }

bool lists(const Certificate& c, std::string_view name, bool wildcard) {
  return std::any_of(c.domains.begin(), c.domains.end(), [&](const std::string& d) {
    return is_wildcard(d) == wildcard && name_matches(d, name);
  });
}

std::vector<const Certificate*> matching(std::span<const Certificate> certs, std::string_view name,
                                         bool wildcard) {
  std::vector<const Certificate*> out;
  for (const Certificate& c : certs) {
    if (qualifies(c) && lists(c, name, wildcard)) out.push_back(&c);
  }
  return out;
}

void rank(std::vector<const Certificate*>& v, SysTime now) {
  std::stable_sort(v.begin(), v.end(),
                   [&](const Certificate* a, const Certificate* b) { return ranks_before(*a, *b, now); });
}

void add_refused(Selection& s, const Certificate& c, bool pinned) {
  s.thumbprints.push_back(c.thumbprint);
  s.reasons.push_back(not_candidate_reason(c, pinned));
}

// Which condition holds: nobody lists the name, or those who do are not enabled for SMTP, are CA
// certificates, or are unusable. Enabling wins (one command fixes it); a CA certificate is named
// as such, since it is the usual mistake (`openssl req -x509` marks its result CA:TRUE).
void explain_no_candidate(Selection& s, std::span<const Certificate> certs, std::string_view name) {
  bool any_lists = false, any_usable = false, any_ca = false;
  for (const Certificate& c : certs) {
    if (!lists(c, name, false) && !lists(c, name, true)) continue;
    any_lists = true;
    any_usable = any_usable || usable(c);
    any_ca = any_ca || c.is_ca;
    add_refused(s, c, /*pinned=*/false);
  }
  s.condition = !any_lists    ? NoCertificate::kNoneListsName
                : any_usable ? NoCertificate::kNotEnabledForSmtp
                : any_ca     ? NoCertificate::kCaCertificate
                             : NoCertificate::kUnusable;
}

ServedCertificate served(const Certificate& c, const SelectionInput& in) {
  ServedCertificate out{c};
  auto left = std::chrono::duration_cast<std::chrono::hours>(c.not_after - in.now);
  out.hours_remaining = left.count();
  out.expired = c.not_after <= in.now;
  out.expires_soon = !out.expired && left < in.warning_window;
  return out;
}

void by_key_type_order(std::vector<const Certificate*>& v) {
  std::stable_sort(v.begin(), v.end(), [](const Certificate* a, const Certificate* b) {
    return key_type_before(a->key_algorithm, b->key_algorithm);
  });
}

// The primary goes first: the rule's choice over every key type, as with one certificate (exact
// before wildcard, valid, CA-issued, newest), RSA first only between equals. A send connector
// presents it and single-valued outputs name it, so a second key type never makes them worse.
void primary_first(std::vector<const Certificate*>& serve, std::span<const Certificate* const> ranked,
                   SysTime now) {
  if (ranked.empty()) return;
  const Certificate* best = nullptr;
  for (const Certificate* c : ranked) {
    if (best && ranks_before(*best, *c, now)) break;  // past the certificates equal to the best
    bool served = std::find(serve.begin(), serve.end(), c) != serve.end();
    if (served && (!best || key_type_before(c->key_algorithm, best->key_algorithm))) best = c;
  }
  auto it = std::find(serve.begin(), serve.end(), best);
  if (it != serve.end()) std::rotate(serve.begin(), it, it + 1);
}

}  // namespace

std::string not_candidate_reason(const Certificate& c, bool pinned) {
  if (!c.limit_exceeded.empty()) return c.limit_exceeded;
  if (c.is_ca) return "it is a CA certificate (basicConstraints CA:TRUE)";
  if (c.version != 3) return "it is X.509 v" + std::to_string(c.version) + ", not v3";
  if (!c.has_private_key) return "the store holds no private key that matches it";
  if (!c.allows_tls_server) return "its key usage or extended key usage forbids TLS server use";
  if (!pinned && !has_service(c.services, Service::kSmtp)) return "it is not enabled for SMTP";
  return "";
}

bool ranks_before(const Certificate& a, const Certificate& b, SysTime now) {
  // A renewal imported before its start date must not displace the certificate in use.
  auto valid = [&](const Certificate& c) {
    return now == SysTime{} || (c.not_before <= now && now < c.not_after);
  };
  if (valid(a) != valid(b)) return valid(a);
  bool a_ca = !a.is_self_signed && a.chain_trusted;
  bool b_ca = !b.is_self_signed && b.chain_trusted;
  if (a_ca != b_ca) return a_ca;
  return a.not_before > b.not_before;
}

const Certificate* best_candidate(std::span<const Certificate* const> listing, SysTime now) {
  const Certificate* best = nullptr;
  for (const Certificate* c : listing) {
    if (qualifies(*c) && (!best || ranks_before(*c, *best, now))) best = c;
  }
  return best;
}

bool parse_tls_certificate_name(std::string_view text, std::string& issuer, std::string& subject) {
  if (!text.starts_with("<I>")) return false;
  size_t s = text.find("<S>");
  if (s == std::string_view::npos) return false;
  issuer = std::string(text.substr(3, s - 3));
  subject = std::string(text.substr(s + 3));
  return !issuer.empty() && !subject.empty();
}

std::vector<const Certificate*> rank_starttls_certificates(std::span<const Certificate> certs,
                                                           std::string_view name, SysTime now) {
  std::vector<const Certificate*> ranked = matching(certs, name, /*wildcard=*/false);
  if (ranked.empty()) ranked = matching(certs, name, /*wildcard=*/true);
  rank(ranked, now);
  return ranked;
}

std::optional<Certificate> select_starttls_certificate(std::span<const Certificate> certs,
                                                       std::string_view name) {
  auto ranked = rank_starttls_certificates(certs, name);
  if (ranked.empty()) return std::nullopt;
  return *ranked.front();
}

Selection select_certificate(std::span<const Certificate> certs, const SelectionInput& in) {
  Selection s;
  std::vector<const Certificate*> serve;
  std::string issuer, subject;
  if (!in.tls_certificate_name.empty() && parse_tls_certificate_name(in.tls_certificate_name, issuer, subject)) {
    // A pin overrides the name rule; the newest usable certificate with that issuer and subject,
    // alone: a pin names one certificate, so one key type.
    std::vector<const Certificate*> pinned;
    for (const Certificate& c : certs) {
      if (!iequals(c.issuer, issuer) || !iequals(c.subject, subject)) continue;
      if (usable(c)) {
        pinned.push_back(&c);
      } else {
        add_refused(s, c, /*pinned=*/true);
      }
    }
    rank(pinned, in.now);
    for (const Certificate* c : pinned) s.ranking.push_back(*c);
    if (pinned.empty()) {
      s.condition = NoCertificate::kPinnedMissing;
    } else {
      s.thumbprints.clear();
      s.reasons.clear();
      serve.push_back(pinned.front());
    }
  } else {
    std::vector<const Certificate*> ranked = rank_starttls_certificates(certs, in.name, in.now);
    serve = select_per_key_type(certs, in.name, in.now);
    primary_first(serve, ranked, in.now);
    for (const Certificate* c : serve) s.ranking.push_back(*c);
    for (const Certificate* c : ranked) {
      if (std::find(serve.begin(), serve.end(), c) == serve.end()) s.ranking.push_back(*c);
    }
    if (serve.empty()) explain_no_candidate(s, certs, in.name);
  }
  if (serve.empty()) return s;
  for (const Certificate* c : serve) s.by_key_type.push_back(served(*c, in));
  const ServedCertificate& primary = s.by_key_type.front();
  s.chosen = primary.certificate;
  s.hours_remaining = primary.hours_remaining;
  s.expired = primary.expired;
  s.expires_soon = primary.expires_soon;
  return s;
}

bool key_type_before(std::string_view a, std::string_view b) {
  auto order = [](std::string_view k) { return k == "RSA" ? 0 : k == "ECDSA" ? 1 : 2; };
  if (order(a) != order(b)) return order(a) < order(b);
  return a < b;
}

std::vector<const Certificate*> best_per_key_type(std::span<const Certificate* const> listing, SysTime now) {
  std::vector<const Certificate*> best;  // one per key type: a store holds two or three types
  for (const Certificate* c : listing) {
    if (!qualifies(*c)) continue;
    auto same = std::find_if(best.begin(), best.end(),
                             [&](const Certificate* b) { return b->key_algorithm == c->key_algorithm; });
    if (same == best.end()) {
      best.push_back(c);
    } else if (ranks_before(*c, **same, now)) {
      *same = c;
    }
  }
  by_key_type_order(best);
  return best;
}

std::vector<const Certificate*> select_per_key_type(std::span<const Certificate> certs, std::string_view name,
                                                    SysTime now) {
  // Within each key type, wildcards only when no exact name of that type qualifies: an RSA
  // certificate for the exact name does not hide the only ECDSA one, a wildcard.
  std::vector<const Certificate*> out = best_per_key_type(matching(certs, name, /*wildcard=*/false), now);
  for (const Certificate* w : best_per_key_type(matching(certs, name, /*wildcard=*/true), now)) {
    bool have = std::any_of(out.begin(), out.end(),
                            [&](const Certificate* c) { return c->key_algorithm == w->key_algorithm; });
    if (!have) out.push_back(w);
  }
  by_key_type_order(out);
  return out;
}

const ServedCertificate* served_of_type(const Selection& s, std::string_view key_algorithm) {
  for (const ServedCertificate& c : s.by_key_type) {
    if (c.certificate.key_algorithm == key_algorithm) return &c;
  }
  return nullptr;
}

std::string describe(NoCertificate c) {
  switch (c) {
    case NoCertificate::kNoneListsName: return "no certificate lists the name in its CertificateDomains";
    case NoCertificate::kNotEnabledForSmtp: return "certificates list the name but are not enabled for SMTP";
    case NoCertificate::kUnusable:
      return "certificates list the name but lack a usable private key, are not X.509 v3, their "
             "key usage forbids TLS server use, or they exceed Starling's limits";
    case NoCertificate::kCaCertificate:
      return "certificates list the name but are CA certificates (basicConstraints CA:TRUE), which "
             "are not served for STARTTLS";
    case NoCertificate::kPinnedMissing: return "no usable certificate matches the connector's TlsCertificateName";
  }
  return "";
}

std::string fix_command(const Selection& s, std::string_view name, std::string_view kind,
                        std::string_view connector) {
  std::string set_cmd = kind == "Send" ? "set-send-connector" : "set-receive-connector";
  switch (s.condition) {
    case NoCertificate::kNotEnabledForSmtp:
      return "starling enable-certificate " + (s.thumbprints.empty() ? std::string("THUMBPRINT") : s.thumbprints.front()) +
             " --services SMTP";
    case NoCertificate::kPinnedMissing:
      return "starling " + set_cmd + " \"" + std::string(connector) +
             "\" --tls-certificate-name \"<I>issuer<S>subject\" (of a certificate in the store), or clear it";
    case NoCertificate::kNoneListsName:
    case NoCertificate::kUnusable:
    case NoCertificate::kCaCertificate:
      return "starling new-certificate --domain " + std::string(name) + " --services SMTP";
  }
  return "";
}

}  // namespace starling::core
