#include "logs/tracking.hpp"

#include <atomic>
#include <chrono>

namespace starling::logs {
namespace {

std::atomic<std::shared_ptr<Tracker>>& current() {
  static std::atomic<std::shared_ptr<Tracker>> tracker;
  return tracker;
}

}  // namespace

void set_tracker(std::shared_ptr<Tracker> tracker) { current().store(std::move(tracker)); }

void track(TrackingEvent event) {
  std::shared_ptr<Tracker> tracker = current().load();
  if (!tracker) return;
  if (event.timestamp_us == 0) {
    event.timestamp_us = std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  }
  tracker->record(std::move(event));
}

void configure_tracker(const TrackingSettings& settings) {
  if (std::shared_ptr<Tracker> tracker = current().load()) tracker->configure(settings);
}

bool flush_tracker(std::chrono::milliseconds timeout) {
  std::shared_ptr<Tracker> tracker = current().load();
  return !tracker || tracker->flush(timeout);
}

}  // namespace starling::logs
