// Operational log lines to stderr ("2026-11-25T17:36:26Z starlingd: ..."), safe from any thread.
// The event log (src/events) builds on this for named events.
#pragma once

#include <string_view>

namespace starling {

void log_line(std::string_view text);

}  // namespace starling
