// Choosing the STARTTLS certificate for a name (EXCHANGE-MODEL.md §3) as a pure function:
// certificate metadata, the name and the time in; the chosen certificate out. Every user of the
// rule (receive side, send side, get-certificate --domain, troubleshooter) calls this one.
#pragma once

#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/certificate.hpp"

namespace starling::core {


// The certificates that qualify for `name`, best first: exact names before wildcards (wildcards
// only when no exact name qualifies); CA-issued and trusted before self-signed; newest NotBefore
// first. Qualifying: X.509 v3, usable private key, SMTP enabled, TLS server use allowed.
std::vector<const Certificate*> rank_starttls_certificates(std::span<const Certificate> certs,
                                                           std::string_view name);

// The first of the ranking, or none.
std::optional<Certificate> select_starttls_certificate(std::span<const Certificate> certs,
                                                       std::string_view name);

}  // namespace starling::core
