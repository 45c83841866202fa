// Certificate metadata as the administrator sees it (docs/certificates.md). Pure data: the tls
// module fills it from X.509, the store persists it, selection and the commands read it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

namespace starling::core {

// Services flags, with Exchange's values.
enum class Service : uint32_t {
  kNone = 0, kImap = 1, kPop = 2, kUm = 4, kIis = 8, kSmtp = 16,
};
using Services = uint32_t;
inline bool has_service(Services s, Service f) { return (s & static_cast<uint32_t>(f)) != 0; }
// "IMAP, POP, SMTP" / "None".
std::string format_services(Services s);
// "SMTP,IMAP" / "IMAP, POP" / "None" -> flags; nullopt for an unknown name or None with others.
std::optional<Services> parse_services(std::string_view text);

using SysTime = std::chrono::system_clock::time_point;

// Names one certificate may carry (its subject CN and every subjectAltName entry). Public CAs
// issue at most a few hundred (Let's Encrypt: 100); a thousand leaves room for private CAs and
// keeps every table built from the names small. A certificate over it is refused on import, and
// one already in the store is never selected (limit_exceeded).
inline constexpr size_t kMaxCertificateNames = 1000;

struct Certificate {
  std::string thumbprint;                  // SHA-1 of DER, 40 upper-case hex digits
  std::string subject;
  std::string issuer;
  std::vector<std::string> domains;        // CertificateDomains: CN + SAN dNSNames, no duplicates
  Services services = 0;
  SysTime not_before{};
  SysTime not_after{};
  bool is_self_signed = false;
  bool has_private_key = false;
  bool private_key_exportable = false;
  std::string friendly_name;
  std::string serial_number;                // upper-case hex, no separators
  int public_key_size = 0;                  // bits
  std::string key_algorithm;                // "RSA", "ECDSA"
  std::string signature_algorithm;          // OpenSSL long name, e.g. "sha256WithRSAEncryption"
  std::string status = "Valid";             // Valid, DateInvalid, Invalid, Untrusted, PendingRequest, ...
  std::string root_ca_type = "None";        // None, ThirdParty, Enterprise, Registry, Unknown
  int version = 3;                          // X.509 version (1..3)
  bool allows_tls_server = true;            // key usage / EKU permit TLS server authentication
  bool chain_trusted = false;               // chain reaches a trusted root
  bool is_ca = false;                       // basicConstraints CA:TRUE: it issues, it is not served
  // Why the certificate is outside Starling's limits (names, key type or size), or empty. Set
  // for certificates stored by a version without the limits: they stay listed but never serve.
  std::string limit_exceeded;
};

}  // namespace starling::core
