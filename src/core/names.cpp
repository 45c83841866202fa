#include "core/names.hpp"

#include <algorithm>
#include <cctype>

namespace starling::core {
namespace {

thread_local uint64_t comparisons = 0;

}  // namespace

uint64_t name_comparisons() { return comparisons; }

std::string to_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string normalize_name(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return to_lower(name);
}

bool iequals(std::string_view a, std::string_view b) {
  ++comparisons;
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](unsigned char x, unsigned char y) {
           return std::tolower(x) == std::tolower(y);
         });
}

bool is_valid_hostname(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('.', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view label = name.substr(start, end - start);
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (unsigned char c : label) {
      if (!std::isalnum(c) && c != '-') return false;
    }
    start = end + 1;
  }
  return true;
}

std::vector<std::string_view> split_list(std::string_view text) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view item = text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    out.push_back(item);
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
}

bool is_wildcard(std::string_view pattern) { return pattern.starts_with("*."); }

bool name_matches(std::string_view pattern, std::string_view name) {
  ++comparisons;
  std::string p = normalize_name(pattern);
  std::string n = normalize_name(name);
  if (!is_wildcard(p)) return p == n;
  // "*.contoso.com": the name must be exactly one label followed by ".contoso.com".
  std::string_view suffix = std::string_view(p).substr(1);  // ".contoso.com"
  if (n.size() <= suffix.size() || !std::string_view(n).ends_with(suffix)) return false;
  std::string_view label = std::string_view(n).substr(0, n.size() - suffix.size());
  return label.find('.') == std::string_view::npos;
}

}  // namespace starling::core
