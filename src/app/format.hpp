// Output of the management shell: --format table (lists), list (PowerShell's Format-List:
// "Property : value", aligned) and json (an array of objects keyed by property name), each
// limited to --property names ('*' = all).
#pragma once

#include <string>
#include <vector>

#include "mgmt/request.hpp"

namespace starling::app {

// Picks `properties` (case-insensitive; "*" = all) from each object, in the order asked; an
// unknown name is an error naming the known ones.
Result<mgmt::Json> select_properties(const mgmt::Json& objects, const std::vector<std::string>& properties);

std::string format_table(const mgmt::Json& objects);
std::string format_list(const mgmt::Json& objects);
std::string format_json(const mgmt::Json& objects);
// One value as the table and list show it: arrays as "{a, b}", booleans as True/False.
std::string display_value(const mgmt::Json& v);

}  // namespace starling::app
