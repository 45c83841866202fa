// Output of the management shell: --format table (lists), list (PowerShell's Format-List:
// "Property : value", aligned) and json (an array of objects keyed by property name), each
// limited to --property names ('*' = all). Tables and lists show values as Exchange does:
// durations as [d.]hh:mm:ss, sizes as "10 MB (10,485,760 bytes)", an inherited Fqdn as
// "mail.contoso.com (inherited)"; JSON keeps the values as they are.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mgmt/request.hpp"

namespace starling::app {

// Picks `properties` (case-insensitive; "*" = all) from each object, in the order asked. A
// property some objects lack is null there (an empty cell); one that no object has is an error
// naming the known ones.
Result<mgmt::Json> select_properties(const mgmt::Json& objects, const std::vector<std::string>& properties);

// The objects with every value as the table and list show it (strings), numbers by their kind
// (mgmt::numeric_kind), and an empty Fqdn beside an EffectiveFqdn as "EFFECTIVE (inherited)".
mgmt::Json display_objects(const mgmt::Json& objects);

std::string format_table(const mgmt::Json& objects);
std::string format_list(const mgmt::Json& objects);
std::string format_json(const mgmt::Json& objects);
// One value as the table and list show it: arrays as "{a, b}", booleans as True/False.
std::string display_value(const mgmt::Json& v);
// Exchange's ByteQuantifiedSize: "10 MB (10,485,760 bytes)", "512 B (512 bytes)".
std::string format_size(uint64_t bytes);

}  // namespace starling::app
