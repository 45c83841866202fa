// Choosing the STARTTLS certificate for a connector (EXCHANGE-MODEL.md §3) as a pure function:
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
  kUnusable,           // (c) they lack a usable private key, are not X.509 v3, or their key
                       //     usage forbids TLS server use
  kPinnedMissing,      // TlsCertificateName names no usable certificate in the store
};

struct SelectionInput {
  std::string_view name;                  // the connector Fqdn, or the server FQDN
  std::string_view tls_certificate_name;  // "<I>issuer<S>subject", or empty
  SysTime now{};
  std::chrono::hours warning_window{24 * 30};
};

struct Selection {
  std::optional<Certificate> chosen;
  // The qualifying certificates, best first (chosen is the first).
  std::vector<Certificate> ranking;
  // When none was chosen:
  NoCertificate condition = NoCertificate::kNoneListsName;
  std::vector<std::string> thumbprints;  // certificates that list the name but fail (b) or (c)
  // About the chosen one:
  bool expired = false;
  bool expires_soon = false;
  int64_t hours_remaining = 0;
};

Selection select_certificate(std::span<const Certificate> certs, const SelectionInput& in);

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
