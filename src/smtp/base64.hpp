// Base64 (RFC 4648 §4) for the SASL exchanges of SMTP AUTH (RFC 4954), both directions: the
// client encodes its responses, the server decodes them. src/smtp links no library that has one.
// The decoder is strict: no whitespace, padding only at the end, length a multiple of four.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace starling::smtp {

std::string base64_encode(std::string_view in);

// nullopt when `in` is not canonical base64 (RFC 4648 §3.3: characters outside the alphabet
// are refused, not skipped; RFC 4954 §4 answers such a response with 501 5.5.2).
std::optional<std::string> base64_decode(std::string_view in);

}  // namespace starling::smtp
