// Choosing the STARTTLS certificate for a connector (docs/certificates.md) as a pure function:
// certificate metadata, the connector's name and pin, and the time in; the chosen certificate —
// or the reason there is none and the command that fixes it — out. Every user of the rule
// (receive side, send side, get-certificate --domain, the troubleshooter) calls this one.
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/certificate.hpp"

namespace starling::core {

// Why no certificate qualifies (event 12014's Condition).
enum class NoCertificate {
  kNoneListsName,      // (a) no certificate lists the name in CertificateDomains
  kNotEnabledForSmtp,  // (b) certificates list it but are not enabled for SMTP
  kUnusable,           // (c) they lack a usable private key, are not X.509 v3, their key
                       //     usage forbids TLS server use, or they exceed Starling's limits
  kPinnedMissing,      // TlsCertificateName names no usable certificate in the store
  kCaCertificate,      // (d) they are CA certificates (basicConstraints CA:TRUE)
};

struct SelectionInput {
  std::string_view name;                  // the connector Fqdn, or the server FQDN
  std::string_view tls_certificate_name;  // "<I>issuer<S>subject", or empty
  SysTime now{};
  std::chrono::hours warning_window{24 * 30};
};

// One certificate a connector serves, with its own expiry. OpenSSL keeps one certificate per key
// type and serves the ECDSA one to a client that offers ECDSA signature algorithms, RSA to the
// others (dual certificates, as Postfix and nginx serve them).
struct ServedCertificate {
  Certificate certificate;
  bool expired = false;
  bool expires_soon = false;
  int64_t hours_remaining = 0;
};

struct Selection {
  // The primary certificate, the one single-valued outputs name and a send connector presents:
  // by_key_type's first, the rule's choice over every key type (RSA first only between equals).
  std::optional<Certificate> chosen;
  // The rule's choice per key type: the primary, then the others RSA first (the widest
  // compatibility), then ECDSA, then any other; a pin serves its one certificate.
  std::vector<ServedCertificate> by_key_type;
  // The qualifying certificates, those served first (chosen is the first).
  std::vector<Certificate> ranking;
  // When none was chosen:
  NoCertificate condition = NoCertificate::kNoneListsName;
  std::vector<std::string> thumbprints;  // certificates that list the name (or match the pin) but fail
  std::vector<std::string> reasons;      // why, one per thumbprint (not_candidate_reason)
  // About the chosen one (by_key_type says the same of each served certificate):
  bool expired = false;
  bool expires_soon = false;
  int64_t hours_remaining = 0;
};

// Why `c` cannot serve STARTTLS whatever the name, or empty when it can: outside the limits, a CA
// certificate, not X.509 v3, no matching private key, key usage, and (unless `pinned`: a pin
// needs no enablement) not enabled for SMTP — the first that applies.
std::string not_candidate_reason(const Certificate& c, bool pinned = false);

// Step 5 of the rule between two candidates for the same name: valid at `now` first (when `now`
// is given), then CA-issued and trusted, then newest NotBefore.
bool ranks_before(const Certificate& a, const Certificate& b, SysTime now);

// The best of `listing` (certificates that all list one name the same way, exact or wildcard)
// that is a candidate, or null: one pass, for tables built over every name of the store.
const Certificate* best_candidate(std::span<const Certificate* const> listing, SysTime now);

Selection select_certificate(std::span<const Certificate> certs, const SelectionInput& in);

// The key types in the order single-valued outputs prefer them: RSA, ECDSA, then the others by
// name. `key_algorithm` is Certificate::key_algorithm.
bool key_type_before(std::string_view a, std::string_view b);

// The best candidate of each key type in `listing`, in key type order: one pass, like
// best_candidate.
std::vector<const Certificate*> best_per_key_type(std::span<const Certificate* const> listing, SysTime now);

// Step 3 to 5 of the rule run once per key type (within each type exact names before
// wildcards), in key type order: the certificates a connector with this name serves.
std::vector<const Certificate*> select_per_key_type(std::span<const Certificate> certs, std::string_view name,
                                                    SysTime now = {});

// The served certificate of that key type ("RSA", "ECDSA"), or null.
const ServedCertificate* served_of_type(const Selection& s, std::string_view key_algorithm);

// Exact names before wildcards (wildcards only when no exact name qualifies); valid at `now`
// before not yet valid or expired (when `now` is given); CA-issued and trusted before
// self-signed; newest NotBefore first.
std::vector<const Certificate*> rank_starttls_certificates(std::span<const Certificate> certs,
                                                           std::string_view name, SysTime now = {});

// The first of the ranking, or none (no pin, no dates considered).
std::optional<Certificate> select_starttls_certificate(std::span<const Certificate> certs,
                                                       std::string_view name);

// Human words for a condition, and the exact command that fixes it.
std::string describe(NoCertificate c);
std::string fix_command(const Selection& s, std::string_view name, std::string_view connector_kind,
                        std::string_view connector_name);

// "<I>CN=CA<S>CN=mail" -> issuer and subject; false when malformed.
bool parse_tls_certificate_name(std::string_view text, std::string& issuer, std::string& subject);

}  // namespace starling::core
