#include "events/event_log.hpp"

#include <nlohmann/json.hpp>

#include "core/log.hpp"

namespace starling::events {

std::string render(std::string_view t, const Fields& fields) {
  std::string out;
  size_t pos = 0;
  while (pos < t.size()) {
    size_t open = t.find('{', pos);
    if (open == std::string_view::npos) break;
    size_t close = t.find('}', open);
    if (close == std::string_view::npos) break;
    out.append(t.substr(pos, open - pos));
    std::string_view key = t.substr(open + 1, close - open - 1);
    auto it = std::find_if(fields.begin(), fields.end(), [&](const auto& f) { return f.first == key; });
    if (it != fields.end()) {
      out += it->second;
    } else {
      out.append(t.substr(open, close - open + 1));
    }
    pos = close + 1;
  }
  out.append(t.substr(std::min(pos, t.size())));
  return out;
}

bool EventLog::log(int id, const std::string& object, const Fields& fields, int64_t generation) {
  const EventDefinition* def = find_event(id);
  if (!def) {
    log_line("event log: unknown event " + std::to_string(id) + " (a bug)");
    return false;
  }
  auto now = clock();
  auto key = std::make_pair(id, object);
  if (auto it = last_.find(key); it != last_.end()) {
    bool same_config = it->second.generation == generation;
    if (same_config && now - it->second.when < suppression) return false;
  }
  last_[key] = {now, generation};
  write(*def, object, fields, now);
  return true;
}

void EventLog::record(int id, const std::string& object, const Fields& fields) {
  const EventDefinition* def = find_event(id);
  if (!def) {
    log_line("event log: unknown event " + std::to_string(id) + " (a bug)");
    return;
  }
  write(*def, object, fields, clock());
}

void EventLog::write(const EventDefinition& event, const std::string& object, const Fields& fields,
                     std::chrono::system_clock::time_point now) {
  const EventDefinition* def = &event;
  int id = event.id;
  std::string message = render(def->message, fields);
  nlohmann::ordered_json data = nlohmann::ordered_json::object();
  for (const auto& [k, v] : fields) data[k] = v;
  log_line("event " + std::to_string(id) + " " + std::string(level_name(def->level)) + " " +
           std::string(def->name) + ": " + message);
  if (store_) {
    store::EventRecord r;
    r.time = std::chrono::system_clock::to_time_t(now);
    r.event_id = id;
    r.level = std::string(level_name(def->level));
    r.category = std::string(def->category);
    r.name = std::string(def->name);
    r.message = message;
    r.data_json = data.dump();
    r.object = object;
    if (auto added = store_->add_event(r); !added) {
      log_line("event log: cannot store event " + std::to_string(id) + ": " + added.error());
    }
  }
}

}  // namespace starling::events
