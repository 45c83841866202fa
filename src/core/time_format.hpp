// Timestamps as Starling writes them: ISO 8601 in UTC ("2026-12-01T21:54:16.123456Z") for the
// server log, the protocol and tracking logs and the management commands, so that they agree to
// the digit and sort as text. Pure arithmetic on the proleptic Gregorian calendar: no gmtime_r
// (glibc takes its time zone lock on every call) and no formatting through printf.
#pragma once

#include <cstdint>
#include <string>

namespace starling::core {

// Digits after the seconds: none (an integral second), milliseconds or microseconds.
enum class TimePrecision { kSeconds = 0, kMilliseconds = 3, kMicroseconds = 6 };

// A Unix time (microseconds, UTC) broken down; times before 1970 count down the same calendar.
struct CivilTime {
  int64_t year = 1970;
  unsigned month = 1, day = 1;            // 1..12, 1..31
  unsigned hour = 0, minute = 0, second = 0;
  unsigned weekday = 4;                   // 0 = Sunday (1970-01-01 was a Thursday)
  uint32_t microsecond = 0;               // 0..999999
};
CivilTime civil_time(int64_t unix_us);

// Appends "YYYY-MM-DDTHH:MM:SS[.fff[fff]]Z": the fraction cut (not rounded) at `precision`, the
// year in at least four digits (strftime's %Y would write "588").
void append_iso8601(std::string& out, int64_t unix_us, TimePrecision precision);
std::string format_iso8601(int64_t unix_us, TimePrecision precision);
// Whole seconds, for any int64 (a time read from a file may be anything).
std::string format_iso8601_seconds(int64_t unix_seconds);

}  // namespace starling::core
