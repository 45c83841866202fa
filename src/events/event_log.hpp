// The event log: renders a catalog event with its fields, keeps it in the store (queryable with
// get-event) and writes it to stderr. A repeat of the same event about the same object within the
// suppression interval is dropped, unless the configuration changed since (EXCHANGE-MODEL.md §4).
// Thread safety: call from one thread (the store connection is not shared).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "events/catalog.hpp"
#include "store/store.hpp"

namespace starling::events {

using Fields = std::vector<std::pair<std::string, std::string>>;

// "{Connector} on {Fqdn}" with the fields filled in; unknown placeholders stay as they are.
std::string render(std::string_view message_template, const Fields& fields);

class EventLog {
 public:
  // `store` may be null (events then go to stderr only).
  explicit EventLog(store::Store* store) : store_(store) {}

  std::chrono::seconds suppression{3600};
  std::function<std::chrono::system_clock::time_point()> clock = [] {
    return std::chrono::system_clock::now();
  };

  // Logs event `id` about `object`. `config_generation` is the store generation the event was
  // computed from. Returns false when suppressed.
  bool log(int id, const std::string& object, const Fields& fields, int64_t config_generation = -1);
  // Logs without suppression: an audit record (who changed what) is never a repeat.
  void record(int id, const std::string& object, const Fields& fields);

 private:
  struct Last {
    std::chrono::system_clock::time_point when;
    int64_t generation;
  };
  void write(const EventDefinition& def, const std::string& object, const Fields& fields,
             std::chrono::system_clock::time_point now);

  store::Store* store_;
  std::map<std::pair<int, std::string>, Last> last_;
};

}  // namespace starling::events
