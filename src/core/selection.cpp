#include "core/selection.hpp"

#include <algorithm>

#include "core/names.hpp"

namespace starling::core {
namespace {

bool qualifies(const Certificate& c) {
  return c.version == 3 && c.has_private_key && has_service(c.services, Service::kSmtp) &&
         c.allows_tls_server;
}

std::vector<const Certificate*> matching(std::span<const Certificate> certs, std::string_view name,
                                         bool wildcard) {
  std::vector<const Certificate*> out;
  for (const Certificate& c : certs) {
    if (!qualifies(c)) continue;
    bool covered = std::any_of(c.domains.begin(), c.domains.end(), [&](const std::string& d) {
      return is_wildcard(d) == wildcard && name_matches(d, name);
    });
    if (covered) out.push_back(&c);
  }
  return out;
}

}  // namespace

std::vector<const Certificate*> rank_starttls_certificates(std::span<const Certificate> certs,
                                                           std::string_view name) {
  std::vector<const Certificate*> ranked = matching(certs, name, /*wildcard=*/false);
  if (ranked.empty()) ranked = matching(certs, name, /*wildcard=*/true);
  std::stable_sort(ranked.begin(), ranked.end(), [](const Certificate* a, const Certificate* b) {
    bool a_ca = !a->is_self_signed && a->chain_trusted;
    bool b_ca = !b->is_self_signed && b->chain_trusted;
    if (a_ca != b_ca) return a_ca;
    return a->not_before > b->not_before;
  });
  return ranked;
}

std::optional<Certificate> select_starttls_certificate(std::span<const Certificate> certs,
                                                       std::string_view name) {
  auto ranked = rank_starttls_certificates(certs, name);
  if (ranked.empty()) return std::nullopt;
  return *ranked.front();
}

}  // namespace starling::core
