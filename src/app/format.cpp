#include "app/format.hpp"

#include <algorithm>

#include "core/names.hpp"

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
  return v.dump();
}

Result<mgmt::Json> select_properties(const mgmt::Json& objects, const std::vector<std::string>& properties) {
  if (properties.empty() || (properties.size() == 1 && properties[0] == "*")) return objects;
  mgmt::Json out = mgmt::Json::array();
  for (const auto& o : objects) {
    mgmt::Json picked = mgmt::Json::object();
    for (const auto& want : properties) {
      bool found = false;
      for (const auto& [k, v] : o.items()) {
        if (core::iequals(k, want)) {
          picked[k] = v;
          found = true;
        }
      }
      if (!found) {
        std::string known;
        for (const auto& [k, v] : o.items()) known += (known.empty() ? "" : ", ") + k;
        return make_error("--property: no property '" + want + "'; the properties are: " + known);
      }
    }
    out.push_back(picked);
  }
  return out;
}

std::string format_table(const mgmt::Json& objects) {
  if (objects.empty()) return "";
  std::vector<std::string> columns;
  for (const auto& [k, v] : objects[0].items()) columns.push_back(k);
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
