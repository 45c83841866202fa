// The event log: renders a catalog event with its fields, keeps it in the store (queryable with
// get-event) and writes it to stderr. A repeat of the same event about the same object within the
// suppression interval is dropped, unless the configuration changed since (docs/events/).
// Refusals and other floods are counted instead (count): one record per object and interval at
// most, carrying how many there were. After every insert the store is pruned to the transport
// server's EventLogMaxAge and EventLogMaxCount, so the log never grows without bound.
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
  // Counts `occurrences` of event `id` about `object`: the first is recorded at once, later ones
  // within `interval` of the last record only counted, and flush_counts() records them once the
  // interval has passed. Each record's Count field says how many occurrences it stands for.
  void count(int id, const std::string& object, const Fields& fields, std::chrono::seconds interval,
             int64_t occurrences = 1);
  // Records what count() is owed; call it periodically. Forgets objects that went quiet.
  void flush_counts();
  // Re-reads EventLogMaxAge and EventLogMaxCount and prunes the store now (also done after every
  // insert, with the settings re-read at most every kRetentionReread).
  void prune();

  static constexpr std::chrono::seconds kRetentionReread{10};

 private:
  struct Last {
    std::chrono::system_clock::time_point when;
    int64_t generation;
  };
  struct Counted {
    std::chrono::system_clock::time_point recorded;
    std::chrono::seconds interval;
    int64_t pending = 0;  // occurrences since the last record
    Fields fields;        // of the latest occurrence
  };
  void write(const EventDefinition& def, const std::string& object, const Fields& fields,
             std::chrono::system_clock::time_point now);
  void write_counted(int id, const std::string& object, Counted& c, std::chrono::system_clock::time_point now);
  void prune_with(std::chrono::system_clock::time_point now, bool reread);

  store::Store* store_;
  std::map<std::pair<int, std::string>, Last> last_;
  std::map<std::pair<int, std::string>, Counted> counted_;
  store::EventRetention retention_;
  std::chrono::system_clock::time_point retention_read_{};
};

}  // namespace starling::events
