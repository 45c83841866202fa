// Operational log lines to stderr ("2026-11-25T17:36:26Z starlingd: ..."), safe from any thread.
// Each line has a syslog priority: under journald (stderr is the journal stream, JOURNAL_STREAM)
// the line starts with "<N>" so that `journalctl -p` filters it, and the journal adds its own
// time; elsewhere the line starts with the UTC time. One call is one line: control characters in
// the text (CR, LF, ESC, ...) are written as \xNN. The event log (src/events) builds on this for
// named events.
#pragma once

#include <string_view>

namespace starling {

// syslog(3) priorities.
enum class LogLevel { kError = 3, kWarning = 4, kNotice = 5, kInfo = 6, kDebug = 7 };

void log_line(LogLevel level, std::string_view text);
inline void log_line(std::string_view text) { log_line(LogLevel::kInfo, text); }

}  // namespace starling
