// Filters in the form Exchange's -Filter takes them ("Status -eq 'Retry' -and MessageCount -gt 10"),
// over the objects a command shows. Pure: parsed once against the properties the command names,
// then evaluated on each object. Property names and text compare case-insensitively (as
// PowerShell does); numbers and times compare as such. Bounded: the text's length, the number of
// comparisons and the nesting of parentheses are limited, so a hostile filter costs little.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.hpp"
#include "mgmt/request.hpp"

namespace starling::mgmt {

inline constexpr size_t kMaxFilterLength = 1024;  // octets of filter text
inline constexpr size_t kMaxFilterTerms = 32;     // comparisons in one filter
inline constexpr size_t kMaxFilterDepth = 8;      // parentheses within parentheses

// How a property's values compare. Text: case-insensitive, -like with PowerShell wildcards; a
// Json array (Recipients) matches when any element (or its "Address") does. Number: a Json
// number. Time: an ISO 8601 UTC string as format_time writes it, or null for none.
enum class PropertyKind { kText, kNumber, kTime };

struct FilterProperty {
  std::string_view name;  // as the objects spell it: "MessageCount"
  PropertyKind kind;
};

class Filter {
 public:
  // The error names the problem and its position (1-based, in octets), e.g. "position 12: expected
  // a value after -eq". `now` anchors relative times ('2h' is two hours ago).
  static Result<Filter> parse(std::string_view text, std::span<const FilterProperty> properties,
                              std::chrono::system_clock::time_point now);

  bool matches(const Json& object) const;
  // Whether the filter compares `property` (so the command fetches what it needs).
  bool mentions(std::string_view property) const;

  struct Node;  // filter.cpp

 private:
  std::shared_ptr<const Node> root_;
  std::vector<std::string> mentioned_;
};

// PowerShell's -like: '*' any run, '?' one character, "[abc]" or "[a-c]" one of a set, '`' takes
// the next character literally; case-insensitive (ASCII), the whole text must match.
bool wildcard_match(std::string_view pattern, std::string_view text);

}  // namespace starling::mgmt
