// A certificate's Status as get-certificate shows it (docs/certificates.md): its dates, and
// whether its chain verifies up to a root that this host trusts. Revocation is not checked.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace starling::tls {

struct CertificateStatus {
  std::string status;          // Valid, DateInvalid, Untrusted, Invalid
  bool chain_trusted = false;  // the chain verified up to a trusted root
  std::string detail;          // OpenSSL's reason when not Valid, for the CLI and the log
};

// Status of `chain_pem[0]` at `now`, with `chain_pem[1..]` as intermediates. Trusted roots: the
// system store (OpenSSL's default paths) plus `trusted_roots_pem` (import-certificate
// --trusted-root). In order: DateInvalid when the leaf is expired or not yet valid (or, later,
// any certificate of the chain is); Untrusted when the chain does not reach a trusted root (a
// self-signed leaf not among the roots included); Invalid for any other failure (a bad
// signature, an issuer that is not a CA, an unreadable certificate).
CertificateStatus check_certificate_status(const std::vector<std::string>& chain_pem,
                                           const std::vector<std::string>& trusted_roots_pem,
                                           std::chrono::system_clock::time_point now);

// True when the PEM certificate's basicConstraints say CA:TRUE: only those may be trusted roots.
bool is_ca_certificate(const std::string& pem);

}  // namespace starling::tls
