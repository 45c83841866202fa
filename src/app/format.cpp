#include "app/format.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iterator>

#include "core/names.hpp"
#include "core/transport_settings.hpp"
#include "mgmt/connectors.hpp"
#include "mgmt/values.hpp"

namespace starling::app {

std::string display_value(const mgmt::Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
  if (v.is_array()) {
    std::string out = "{";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + display_value(v[i]);
    return out + "}";
  }
  if (v.is_null()) return "";
  if (v.is_object()) {
    // A nested object (a recipient of get-message): "first (Key: value; Key: value)".
    std::string head, rest;
    for (const auto& [key, value] : v.items()) {
      std::string shown = display_value(value);
      if (shown.empty()) continue;
      if (head.empty()) {
        head = shown;
      } else {
        rest += (rest.empty() ? "" : "; ") + key + ": " + shown;
      }
    }
    return rest.empty() ? head : head + " (" + rest + ")";
  }
  return v.dump();
}

Result<mgmt::Json> select_properties(const mgmt::Json& objects, const std::vector<std::string>& properties) {
  if (properties.empty() || (properties.size() == 1 && properties[0] == "*")) return objects;
  // Each asked name as the objects spell it ("fqdn" -> "Fqdn").
  std::vector<std::string> names;
  for (const auto& want : properties) {
    std::string found;
    for (const auto& o : objects) {
      for (const auto& [k, v] : o.items()) {
        if (found.empty() && core::iequals(k, want)) found = k;
      }
    }
    if (found.empty() && !objects.empty()) {
      std::string known;
      for (const auto& [k, v] : objects[0].items()) known += (known.empty() ? "" : ", ") + k;
      return make_error("--property: no property '" + want + "'; the properties are: " + known);
    }
    names.push_back(found);
  }
  mgmt::Json out = mgmt::Json::array();
  for (const auto& o : objects) {
    mgmt::Json picked = mgmt::Json::object();
    for (const auto& name : names) picked[name] = o.contains(name) ? o[name] : mgmt::Json();
    out.push_back(picked);
  }
  return out;
}

std::string format_size(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KB", "MB", "GB", "TB"};
  size_t unit = 0;
  double value = static_cast<double>(bytes);
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  char scaled[32];
  std::snprintf(scaled, sizeof scaled, "%.3f", value);
  std::string number = scaled;
  while (number.back() == '0') number.pop_back();
  if (number.back() == '.') number.pop_back();
  std::string digits = std::to_string(bytes);
  std::string grouped;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) grouped += ',';
    grouped += digits[i];
  }
  return number + " " + kUnits[unit] + " (" + grouped + (bytes == 1 ? " byte)" : " bytes)");
}

namespace {

std::string display_property(const mgmt::Json& object, const std::string& name, const mgmt::Json& v) {
  if (v.is_number_integer() && v >= 0) {
    switch (mgmt::numeric_kind(name).value_or(mgmt::NumericKind::kPlain)) {
      case mgmt::NumericKind::kDuration: return core::format_duration(std::chrono::seconds(v.get<int64_t>()));
      case mgmt::NumericKind::kSize: return format_size(v.get<uint64_t>());
      case mgmt::NumericKind::kPlain: break;
    }
  }
  if (name == "Fqdn" && v.is_string() && v.get<std::string>().empty()) {
    auto effective = object.find(mgmt::kEffectiveFqdn);
    if (effective != object.end() && effective->is_string() && !effective->get<std::string>().empty()) {
      return effective->get<std::string>() + " (inherited)";
    }
  }
  return display_value(v);
}

}  // namespace

mgmt::Json display_objects(const mgmt::Json& objects) {
  mgmt::Json out = mgmt::Json::array();
  for (const auto& o : objects) {
    mgmt::Json shown = mgmt::Json::object();
    for (const auto& [k, v] : o.items()) shown[k] = display_property(o, k, v);
    out.push_back(shown);
  }
  return out;
}

std::string format_table(const mgmt::Json& objects) {
  if (objects.empty()) return "";
  // Every property any object has, in the order they first appear (events differ in their data).
  std::vector<std::string> columns;
  for (const auto& o : objects) {
    for (const auto& [k, v] : o.items()) {
      if (std::find(columns.begin(), columns.end(), k) == columns.end()) columns.push_back(k);
    }
  }
  std::vector<size_t> width;
  for (const auto& c : columns) width.push_back(c.size());
  std::vector<std::vector<std::string>> rows;
  for (const auto& o : objects) {
    std::vector<std::string> row;
    for (size_t i = 0; i < columns.size(); ++i) {
      row.push_back(o.contains(columns[i]) ? display_value(o[columns[i]]) : "");
      width[i] = std::max(width[i], row.back().size());
    }
    rows.push_back(std::move(row));
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (size_t i = 0; i < cells.size(); ++i) {
      out += cells[i];
      if (i + 1 < cells.size()) out += std::string(width[i] - cells[i].size() + 1, ' ');
    }
    return out + "\n";
  };
  std::string out = line(columns);
  std::vector<std::string> dashes;
  for (size_t i = 0; i < columns.size(); ++i) dashes.push_back(std::string(columns[i].size(), '-'));
  out += line(dashes);
  for (const auto& r : rows) out += line(r);
  return out;
}

std::string format_list(const mgmt::Json& objects) {
  std::string out;
  for (const auto& o : objects) {
    size_t w = 0;
    for (const auto& [k, v] : o.items()) w = std::max(w, k.size());
    out += "\n";
    for (const auto& [k, v] : o.items()) out += k + std::string(w - k.size(), ' ') + " : " + display_value(v) + "\n";
  }
  return out;
}

std::string format_json(const mgmt::Json& objects) { return objects.dump(2) + "\n"; }

}  // namespace starling::app
