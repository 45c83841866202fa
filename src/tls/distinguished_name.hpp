// Distinguished names as administrators type them ("CN=mail.contoso.com, O=Contoso, C=US"), and
// the DNS names a certificate or request covers (docs/certificates.md: the subject CN is always
// one of the domains). Written most specific first, the way describe_certificate shows them.
#pragma once

#include <openssl/x509.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.hpp"

namespace starling::tls {

using Rdn = std::pair<std::string, std::string>;  // attribute key as written, value

// Splits a DN into (key, value) pairs in written order. Separators ',' or ';' with optional
// spaces; values may be quoted ("O=\"A, B\"") or use backslash escapes, including \XX hex pairs
// (RFC 4514 §2.4). A '+' is kept in the value: multi-valued RDNs are not supported.
Result<std::vector<Rdn>> split_distinguished_name(std::string_view dn);

// Replaces the entries of `name` with `dn`. The last written RDN becomes the first in the
// encoding (RFC 4514 §2.1), so describe_certificate shows `dn` back as written.
// Keys: CN, O, OU, L, S or ST, C, E (emailAddress), DC, STREET, SERIALNUMBER, or any OpenSSL
// short name, long name or dotted OID.
Result<void> set_distinguished_name(X509_NAME* name, std::string_view dn);

// The first CN of `name` as UTF-8; empty when there is none.
std::string common_name(const X509_NAME* name);

// The dNSNames a certificate for `cn` and `domains` carries: the CN first, then `domains`,
// without empty names or duplicates (compared case-insensitively).
std::vector<std::string> certificate_domains(const std::string& cn,
                                             const std::vector<std::string>& domains);

// A subjectAltName extension listing `dns_names`; null on failure. The caller owns it.
X509_EXTENSION* make_subject_alt_name(const std::vector<std::string>& dns_names);

}  // namespace starling::tls
