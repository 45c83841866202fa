// Reading command-line values the way an Exchange administrator writes them: booleans as
// true/false/$true/$false, sizes as "10MB" or "512 KB", durations as "00:05:00" or seconds,
// lists as comma-separated items (or the option repeated). Each failure names the property.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "mgmt/request.hpp"

namespace starling::mgmt {

Result<bool> parse_bool(std::string_view property, std::string_view text);
Result<uint64_t> parse_size(std::string_view property, std::string_view text);
Result<int64_t> parse_seconds(std::string_view property, std::string_view text);
Result<int64_t> parse_integer(std::string_view property, std::string_view text);
// A string or an array of strings, comma lists split and trimmed.
std::vector<std::string> as_list(const Json& value);
// A single string (the last, if the option was repeated).
std::string as_string(const Json& value);
// "2026-11-25T17:00:00Z", "2026-11-25", "90m", "2h", "3d" (ago), or Unix seconds.
Result<int64_t> parse_time(std::string_view text, std::chrono::system_clock::time_point now);
std::string format_time(int64_t unix_seconds);  // ISO 8601 UTC
// Standard base64 (RFC 4648 §4), for file contents in control requests and replies.
std::string to_base64(const std::string& bytes);
Result<std::string> from_base64(const std::string& text);
// Lower case without '-' or '_': how option names and property names are compared.
std::string option_key(std::string_view name);

}  // namespace starling::mgmt
