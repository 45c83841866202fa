#include "core/selection.hpp"

#include <algorithm>

#include "core/names.hpp"

namespace starling::core {
namespace {

bool usable(const Certificate& c) { return c.version == 3 && c.has_private_key && c.allows_tls_server; }
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
  // A renewal imported before its start date must not displace the certificate in use.
  auto valid = [&](const Certificate* c) {
    return now == SysTime{} || (c->not_before <= now && now < c->not_after);
  };
  std::stable_sort(v.begin(), v.end(), [&](const Certificate* a, const Certificate* b) {
    if (valid(a) != valid(b)) return valid(a);
    bool a_ca = !a->is_self_signed && a->chain_trusted;
    bool b_ca = !b->is_self_signed && b->chain_trusted;
    if (a_ca != b_ca) return a_ca;
    return a->not_before > b->not_before;
  });
}

}  // namespace

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
  std::string issuer, subject;
  if (!in.tls_certificate_name.empty() && parse_tls_certificate_name(in.tls_certificate_name, issuer, subject)) {
    // A pin overrides the name rule; the newest usable certificate with that issuer and subject.
    std::vector<const Certificate*> pinned;
    for (const Certificate& c : certs) {
      if (usable(c) && iequals(c.issuer, issuer) && iequals(c.subject, subject)) pinned.push_back(&c);
    }
    rank(pinned, in.now);
    for (const Certificate* c : pinned) s.ranking.push_back(*c);
    if (pinned.empty()) s.condition = NoCertificate::kPinnedMissing;
  } else {
    for (const Certificate* c : rank_starttls_certificates(certs, in.name, in.now)) s.ranking.push_back(*c);
    if (s.ranking.empty()) {
      // Which condition holds: nobody lists the name, or those who do are not enabled for SMTP,
      // or are unusable. Unusable wins over "not enabled": enabling would not help.
      bool any_lists = false, any_usable = false;
      for (const Certificate& c : certs) {
        if (!lists(c, in.name, false) && !lists(c, in.name, true)) continue;
        any_lists = true;
        any_usable = any_usable || usable(c);
        s.thumbprints.push_back(c.thumbprint);
      }
      s.condition = !any_lists ? NoCertificate::kNoneListsName
                    : any_usable ? NoCertificate::kNotEnabledForSmtp
                                 : NoCertificate::kUnusable;
    }
  }
  if (s.ranking.empty()) return s;
  s.chosen = s.ranking.front();
  auto left = std::chrono::duration_cast<std::chrono::hours>(s.chosen->not_after - in.now);
  s.hours_remaining = left.count();
  s.expired = s.chosen->not_after <= in.now;
  s.expires_soon = !s.expired && left < in.warning_window;
  return s;
}

std::string describe(NoCertificate c) {
  switch (c) {
    case NoCertificate::kNoneListsName: return "no certificate lists the name in its CertificateDomains";
    case NoCertificate::kNotEnabledForSmtp: return "certificates list the name but are not enabled for SMTP";
    case NoCertificate::kUnusable:
      return "certificates list the name but lack a usable private key, are not X.509 v3, or their "
             "key usage forbids TLS server use";
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
      return "starling new-certificate --domain " + std::string(name) + " --services SMTP";
  }
  return "";
}

}  // namespace starling::core
