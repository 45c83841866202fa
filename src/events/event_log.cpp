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

void EventLog::count(int id, const std::string& object, const Fields& fields, std::chrono::seconds interval,
                     int64_t occurrences) {
  auto now = clock();
  auto key = std::make_pair(id, object);
  auto it = counted_.find(key);
  if (it == counted_.end()) {
    // Bounded by the distinct objects within one interval: flush_counts() forgets the quiet ones.
    Counted c{now, interval, occurrences, fields};
    write_counted(id, object, c, now);
    counted_.emplace(key, std::move(c));
    return;
  }
  it->second.pending += occurrences;
  it->second.fields = fields;
  it->second.interval = interval;
  if (now - it->second.recorded >= interval) write_counted(id, object, it->second, now);
}

void EventLog::flush_counts() {
  auto now = clock();
  for (auto it = counted_.begin(); it != counted_.end();) {
    Counted& c = it->second;
    if (now - c.recorded < c.interval) {
      ++it;
    } else if (c.pending > 0) {
      write_counted(it->first.first, it->first.second, c, now);
      ++it;
    } else {
      it = counted_.erase(it);
    }
  }
}

void EventLog::write_counted(int id, const std::string& object, Counted& c,
                             std::chrono::system_clock::time_point now) {
  const EventDefinition* def = find_event(id);
  if (!def) {
    log_line("event log: unknown event " + std::to_string(id) + " (a bug)");
    return;
  }
  Fields fields = c.fields;
  fields.emplace_back("Count", std::to_string(c.pending));
  c.pending = 0;
  c.recorded = now;
  write(*def, object, fields, now);
}

void EventLog::prune() { prune_with(clock(), true); }

void EventLog::prune_with(std::chrono::system_clock::time_point now, bool reread) {
  if (!store_) return;
  if (reread || now - retention_read_ >= kRetentionReread || now < retention_read_) {
    auto settings = store_->transport_settings();
    if (settings) {
      retention_.max_age_seconds = settings->event_log_max_age.count();
      retention_.max_count = settings->event_log_max_count;
    }
    retention_read_ = now;
  }
  auto pruned = store_->prune_events(retention_, std::chrono::system_clock::to_time_t(now));
  if (!pruned) log_line("event log: cannot prune the stored events: " + pruned.error());
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
      return;
    }
    prune_with(now, false);
  }
}

}  // namespace starling::events
