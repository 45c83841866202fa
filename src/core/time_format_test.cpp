// The one ISO 8601 formatter: the digits gmtime_r and strftime give, for every precision, for
// leap days, century years, the epoch and times before it.
#include "core/time_format.hpp"

#include <cstdint>

#include <gtest/gtest.h>

#include <ctime>
#include <random>

namespace starling::core {
namespace {

std::string reference(int64_t unix_us, TimePrecision p) {
  int64_t seconds = unix_us / 1'000'000 - (unix_us % 1'000'000 < 0 ? 1 : 0);
  auto micros = static_cast<long long>(unix_us - seconds * 1'000'000);
  std::time_t t = seconds;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char text[96];
  // ISO 8601 wants four digits of year; strftime's %Y writes "588" for the year 588.
  auto n = static_cast<size_t>(std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                                             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec));
  if (p == TimePrecision::kMilliseconds) n += std::snprintf(text + n, sizeof text - n, ".%03lld", micros / 1000);
  if (p == TimePrecision::kMicroseconds) n += std::snprintf(text + n, sizeof text - n, ".%06lld", micros);
  std::snprintf(text + n, sizeof text - n, "Z");
  return text;
}

TEST(TimeFormat, WritesEachPrecision) {
  constexpr int64_t kT = 1'796'083'200'123'456;  // 2026-12-01T00:00:00.123456Z
  EXPECT_EQ(format_iso8601(kT, TimePrecision::kMicroseconds), "2026-12-01T00:00:00.123456Z");
  EXPECT_EQ(format_iso8601(kT, TimePrecision::kMilliseconds), "2026-12-01T00:00:00.123Z");
  EXPECT_EQ(format_iso8601(kT, TimePrecision::kSeconds), "2026-12-01T00:00:00Z");
  EXPECT_EQ(format_iso8601_seconds(1'800'000'000), "2027-01-15T08:00:00Z");
  EXPECT_EQ(format_iso8601(0, TimePrecision::kMicroseconds), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_iso8601(-1, TimePrecision::kMicroseconds), "1969-12-31T23:59:59.999999Z");
}

TEST(TimeFormat, AgreesWithGmtimeOnLeapDaysCenturiesAndRandomTimes) {
  for (int64_t s : {951'782'400LL, 951'868'799LL, 4'107'542'400LL, 4'102'444'799LL, 13'574'563'200LL,
                    -2'208'988'800LL, -62'135'596'800LL, 253'402'300'799LL}) {
    EXPECT_EQ(format_iso8601_seconds(s), reference(s * 1'000'000, TimePrecision::kSeconds)) << s;
  }
  std::mt19937_64 random(11);
  std::uniform_int_distribution<int64_t> any(-62'135'596'800'000'000LL, 253'402'300'799'999'999LL);
  for (int i = 0; i < 20'000; ++i) {
    int64_t us = any(random);
    for (auto p : {TimePrecision::kSeconds, TimePrecision::kMilliseconds, TimePrecision::kMicroseconds}) {
      ASSERT_EQ(format_iso8601(us, p), reference(us, p)) << us;
    }
  }
}

TEST(TimeFormat, KnowsTheWeekday) {
  EXPECT_EQ(civil_time(0).weekday, 4u);                               // Thursday
  EXPECT_EQ(civil_time(1'796'083'200'000'000).weekday, 2u);           // 2026-12-01, a Tuesday
  EXPECT_EQ(civil_time(-86'400'000'000).weekday, 3u);                 // 1969-12-31, a Wednesday
  std::mt19937_64 random(12);
  std::uniform_int_distribution<int64_t> any(-4'000'000'000LL, 40'000'000'000LL);
  for (int i = 0; i < 5'000; ++i) {
    std::time_t t = any(random);
    std::tm tm{};
    gmtime_r(&t, &tm);
    ASSERT_EQ(civil_time(int64_t{t} * 1'000'000).weekday, static_cast<unsigned>(tm.tm_wday)) << t;
  }
}

// Times read from files may be anything: the ends of int64 are formatted, not overflowed.
TEST(TimeFormat, FormatsTheEndsOfInt64) {
  EXPECT_EQ(format_iso8601_seconds(INT64_MAX), "292277026596-12-04T15:30:07Z");
  EXPECT_EQ(format_iso8601(INT64_MIN, TimePrecision::kMicroseconds), "-290308-12-21T19:59:05.224192Z");
  EXPECT_EQ(format_iso8601(INT64_MAX, TimePrecision::kMicroseconds), "294247-01-10T04:00:54.775807Z");
  EXPECT_FALSE(format_iso8601_seconds(INT64_MIN).empty());
  EXPECT_EQ(format_iso8601_seconds(-1), "1969-12-31T23:59:59Z");
}

}  // namespace
}  // namespace starling::core
