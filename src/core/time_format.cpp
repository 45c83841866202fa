#include "core/time_format.hpp"

namespace starling::core {
namespace {

constexpr int64_t kUsPerSecond = 1'000'000;
constexpr int64_t kSecondsPerDay = 86'400;

int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b < 0 ? 1 : 0); }

// As printf's "%0*d": at least `width` characters, a sign counting as one of them.
void append_padded(std::string& out, int64_t value, int width) {
  char digits[24];
  int n = 0;
  uint64_t magnitude = value < 0 ? 0 - static_cast<uint64_t>(value) : static_cast<uint64_t>(value);
  do {
    digits[n++] = static_cast<char>('0' + magnitude % 10);
    magnitude /= 10;
  } while (magnitude != 0);
  if (value < 0) {
    out += '-';
    --width;
  }
  for (int i = n; i < width; ++i) out += '0';
  while (n > 0) out += digits[--n];
}

}  // namespace

namespace {

// Days to year/month/day: the era-based algorithm of H. Hinnant's "chrono-Compatible Low-Level
// Date Algorithms" (civil_from_days), exact for every int64 second count (no product overflows:
// the year of the largest is about 2.9e11).
CivilTime civil_time_of(int64_t seconds, uint32_t microsecond) {
  CivilTime t;
  int64_t days = floor_div(seconds, kSecondsPerDay);
  int64_t second_of_day = seconds % kSecondsPerDay;  // not seconds - days * 86400: it overflows
  if (second_of_day < 0) second_of_day += kSecondsPerDay;
  t.microsecond = microsecond;
  t.hour = static_cast<unsigned>(second_of_day / 3600);
  t.minute = static_cast<unsigned>(second_of_day / 60 % 60);
  t.second = static_cast<unsigned>(second_of_day % 60);
  t.weekday = static_cast<unsigned>((days % 7 + 11) % 7);
  int64_t z = days + 719'468;
  int64_t era = floor_div(z, 146'097);
  auto day_of_era = static_cast<unsigned>(z - era * 146'097);
  unsigned year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36'524 - day_of_era / 146'096) / 365;
  unsigned day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
  unsigned month_from_march = (5 * day_of_year + 2) / 153;
  t.day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
  t.month = month_from_march < 10 ? month_from_march + 3 : month_from_march - 9;
  t.year = static_cast<int64_t>(year_of_era) + era * 400 + (t.month <= 2 ? 1 : 0);
  return t;
}

void append_civil(std::string& out, const CivilTime& t, TimePrecision precision) {
  append_padded(out, t.year, 4);
  out += '-';
  append_padded(out, t.month, 2);
  out += '-';
  append_padded(out, t.day, 2);
  out += 'T';
  append_padded(out, t.hour, 2);
  out += ':';
  append_padded(out, t.minute, 2);
  out += ':';
  append_padded(out, t.second, 2);
  if (precision == TimePrecision::kMilliseconds) {
    out += '.';
    append_padded(out, t.microsecond / 1000, 3);
  } else if (precision == TimePrecision::kMicroseconds) {
    out += '.';
    append_padded(out, t.microsecond, 6);
  }
  out += 'Z';
}

}  // namespace

CivilTime civil_time(int64_t unix_us) {
  // The remainder taken first: seconds * 10^6 would overflow within a second of INT64_MIN.
  int64_t microsecond = unix_us % kUsPerSecond;
  if (microsecond < 0) microsecond += kUsPerSecond;
  return civil_time_of(floor_div(unix_us, kUsPerSecond), static_cast<uint32_t>(microsecond));
}

void append_iso8601(std::string& out, int64_t unix_us, TimePrecision precision) {
  append_civil(out, civil_time(unix_us), precision);
}

std::string format_iso8601(int64_t unix_us, TimePrecision precision) {
  std::string out;
  out.reserve(32);
  append_iso8601(out, unix_us, precision);
  return out;
}

std::string format_iso8601_seconds(int64_t unix_seconds) {
  std::string out;
  out.reserve(24);
  append_civil(out, civil_time_of(unix_seconds, 0), TimePrecision::kSeconds);
  return out;
}

}  // namespace starling::core
