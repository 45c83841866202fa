// Filters: the Exchange form over objects, case-insensitive names and text, numbers and times
// compared as such, wildcards, -and/-or/-not and parentheses, and hostile text refused with the
// problem and its position.
#include "mgmt/filter.hpp"

#include <gtest/gtest.h>

#include "mgmt/values.hpp"

namespace starling::mgmt {
namespace {

constexpr FilterProperty kProperties[] = {
    {"Identity", PropertyKind::kText},  {"Status", PropertyKind::kText},
    {"FromAddress", PropertyKind::kText}, {"Size", PropertyKind::kNumber},
    {"IncomingRate", PropertyKind::kNumber}, {"DateReceived", PropertyKind::kTime},
    {"LastError", PropertyKind::kText}, {"Recipients", PropertyKind::kText},
};

const auto kNow = std::chrono::system_clock::from_time_t(1'800'000'000);

Json message() {
  return Json{{"Identity", "mx\\contoso.com\\3"},
              {"Status", "Retry"},
              {"FromAddress", "Alice@Contoso.com"},
              {"Size", 20480},
              {"IncomingRate", 0.5},
              {"DateReceived", format_time(1'800'000'000 - 3600)},
              {"LastError", nullptr},
              {"Recipients", Json::array({Json{{"Address", "bob@fabrikam.com"}, {"Status", "Retry"}},
                                          Json{{"Address", "carol@contoso.com"}, {"Status", "Ready"}}})}};
}

Result<Filter> parse(std::string_view text) { return Filter::parse(text, kProperties, kNow); }

bool matches(std::string_view text) {
  auto f = parse(text);
  EXPECT_TRUE(f) << text << ": " << f.error();
  return f && f->matches(message());
}

TEST(Filter, ComparesTextCaseInsensitively) {
  EXPECT_TRUE(matches("Status -eq 'Retry'"));
  EXPECT_TRUE(matches("status -EQ 'retry'"));
  EXPECT_TRUE(matches("Status -eq \"RETRY\""));
  EXPECT_FALSE(matches("Status -eq 'Ready'"));
  EXPECT_TRUE(matches("Status -ne 'Ready'"));
  EXPECT_FALSE(matches("Status -ne 'Retry'"));
  EXPECT_TRUE(matches("Status -gt 'Ready'"));  // "retry" after "ready"
  EXPECT_TRUE(matches("Status -lt 'suspended'"));
  EXPECT_TRUE(matches("Status -ge 'retry'"));
  EXPECT_TRUE(matches("Status -le 'RETRY'"));
}

TEST(Filter, Wildcards) {
  EXPECT_TRUE(matches("FromAddress -like '*@contoso.com'"));
  EXPECT_TRUE(matches("FromAddress -like 'ALICE@*'"));
  EXPECT_FALSE(matches("FromAddress -like '*@fabrikam.com'"));
  EXPECT_TRUE(matches("FromAddress -notlike '*@fabrikam.com'"));
  EXPECT_FALSE(matches("FromAddress -notlike '*contoso*'"));
  EXPECT_TRUE(matches("Identity -like 'mx\\*\\3'"));
  EXPECT_TRUE(wildcard_match("a?c", "abc"));
  EXPECT_FALSE(wildcard_match("a?c", "ac"));
  EXPECT_TRUE(wildcard_match("a?c", "a\xc3\xa9" "c"));  // ? is one character, not one octet
  EXPECT_TRUE(wildcard_match("[a-c]x", "Bx"));
  EXPECT_FALSE(wildcard_match("[a-c]x", "dx"));
  EXPECT_TRUE(wildcard_match("[xyz]", "y"));
  EXPECT_TRUE(wildcard_match("100`%", "100%"));
  EXPECT_TRUE(wildcard_match("`*", "*"));
  EXPECT_FALSE(wildcard_match("`*", "x"));
  EXPECT_TRUE(wildcard_match("*", ""));
  EXPECT_TRUE(wildcard_match("**a**", "bab"));
  EXPECT_FALSE(wildcard_match("", "a"));
  EXPECT_TRUE(wildcard_match("*ab*ab", "xabyabab"));
  EXPECT_FALSE(wildcard_match("abc", "abcd"));
}

TEST(Filter, NumbersAsNumbers) {
  EXPECT_TRUE(matches("Size -gt 10000"));
  EXPECT_TRUE(matches("Size -gt 9999.5"));
  EXPECT_FALSE(matches("Size -lt 3000"));  // as text "20480" < "3000"
  EXPECT_TRUE(matches("Size -eq 20KB"));
  EXPECT_TRUE(matches("Size -eq '20480'"));
  EXPECT_TRUE(matches("Size -lt 1MB"));
  EXPECT_TRUE(matches("Size -ge 20480 -and Size -le 20480"));
  EXPECT_TRUE(matches("IncomingRate -gt 0.25"));
  EXPECT_TRUE(matches("Size -gt -1"));
  EXPECT_TRUE(matches("Size -ne 1"));
}

TEST(Filter, TimesAsTimes) {
  EXPECT_TRUE(matches("DateReceived -lt '30m'"));     // an hour ago is before 30 minutes ago
  EXPECT_FALSE(matches("DateReceived -lt '2h'"));
  EXPECT_TRUE(matches("DateReceived -gt '2020-01-01'"));
  EXPECT_TRUE(matches("DateReceived -eq '" + format_time(1'800'000'000 - 3600) + "'"));
  EXPECT_TRUE(matches("DateReceived -lt " + std::to_string(1'800'000'000)));  // Unix seconds
  // None is neither before nor after anything.
  Json none = message();
  none["DateReceived"] = nullptr;
  for (const char* f : {"DateReceived -lt '1d'", "DateReceived -gt '1d'", "DateReceived -eq '1d'"}) {
    EXPECT_FALSE(parse(f)->matches(none)) << f;
  }
  EXPECT_TRUE(parse("DateReceived -ne '1d'")->matches(none));
  EXPECT_TRUE(parse("DateReceived -eq $null")->matches(none));
}

TEST(Filter, NullAndEmpty) {
  EXPECT_TRUE(matches("LastError -eq $null"));
  EXPECT_TRUE(matches("LastError -eq ''"));
  EXPECT_FALSE(matches("LastError -ne $null"));
  EXPECT_FALSE(matches("Status -eq $null"));
  EXPECT_TRUE(matches("Status -ne $NULL"));
}

TEST(Filter, AnyRecipient) {
  EXPECT_TRUE(matches("Recipients -like '*@fabrikam.com'"));
  EXPECT_TRUE(matches("Recipients -eq 'CAROL@contoso.com'"));
  EXPECT_FALSE(matches("Recipients -eq 'dave@contoso.com'"));
  EXPECT_TRUE(matches("Recipients -ne 'dave@contoso.com'"));
  EXPECT_FALSE(matches("Recipients -notlike '*@contoso.com'"));
}

TEST(Filter, JunctionsAndGroups) {
  EXPECT_TRUE(matches("Status -eq 'Retry' -and FromAddress -like '*@contoso.com'"));
  EXPECT_FALSE(matches("Status -eq 'Retry' -and Size -gt 1MB"));
  EXPECT_TRUE(matches("Status -eq 'Ready' -or Size -gt 1KB"));
  EXPECT_FALSE(matches("Status -eq 'Ready' -or Size -gt 1MB"));
  EXPECT_TRUE(matches("(Status -eq 'Ready' -or Status -eq 'Retry') -and Size -gt 1KB"));
  EXPECT_TRUE(matches("-not Status -eq 'Ready'"));
  EXPECT_FALSE(matches("-not (Status -eq 'Retry')"));
  EXPECT_TRUE(matches("{Status -eq 'Retry'}"));  // PowerShell's script block
  EXPECT_TRUE(matches("  Status   -eq   'Retry'  "));
}

TEST(Filter, Quotes) {
  Json o{{"Status", "it's \"here\""}};
  EXPECT_TRUE(parse("Status -eq 'it''s \"here\"'")->matches(o));
  EXPECT_TRUE(parse("Status -eq \"it's `\"here`\"\"")->matches(o));
  EXPECT_TRUE(parse("Status -eq \"it's \"\"here\"\"\"")->matches(o));
  EXPECT_TRUE(parse("Status -eq '-and'")->matches(Json{{"Status", "-AND"}}));
  EXPECT_TRUE(parse("Status -eq '$null'")->matches(Json{{"Status", "$null"}}));
}

TEST(Filter, SaysWhatItCompares) {
  auto f = parse("Status -eq 'Retry' -and Recipients -like '*@x'");
  ASSERT_TRUE(f) << f.error();
  EXPECT_TRUE(f->mentions("Recipients"));
  EXPECT_TRUE(f->mentions("Status"));
  EXPECT_FALSE(f->mentions("Size"));
}

// Each refusal names the problem and where it is.
TEST(Filter, BadFiltersSayWhatAndWhere) {
  struct Case {
    std::string text;
    std::string said;
  };
  const std::vector<Case> cases{
      {"", "empty"},
      {"   ", "empty"},
      {"{}", "empty"},
      {"Colour -eq 'red'", "position 1: no property 'Colour'; the properties are: Identity, Status"},
      {"Status", "position 7: expected a comparison after Status"},
      {"Status -matches 'x'", "position 8: expected a comparison"},
      {"Status -eq", "position 11: expected a value after -eq"},
      {"Status -eq Retry", "position 12: 'Retry' is not a number: quote text ('Retry')"},
      {"Status -eq 'Retry", "position 12: the quote opened here is not closed"},
      {"Status -eq 'a' Size -gt 1", "position 16: unexpected 'Size'"},
      {"Status -eq 'a' -and", "position 20: expected a property name"},
      {"Status -eq 'a' -and Size -gt 1 -or Size -lt 2", "position 32: -and and -or mixed"},
      {"(Status -eq 'a'", "position 16: expected ')'"},
      {"Status -eq 'a')", "position 15: unexpected ')'"},
      {"Size -gt 'big'", "position 10: Size is a number; 'big' is not"},
      {"Size -like '1*'", "-like compares text, and Size is a number"},
      {"DateReceived -like '2026*'", "-like compares text, and DateReceived is a time"},
      {"DateReceived -gt 'yesterday'", "DateReceived is a time; 'yesterday' is not"},
      {"Status -gt $null", "$null goes only with -eq and -ne"},
      {"Status -like '[abc'", "opens '[' without closing it"},
      {"Status -eq\x01'a'", "position 11: a control character"},
      {"-eq 'a'", "position 1: expected a property name, found 'eq'"},
      {"Size -gt nan", "'nan' is not a number"},
      {"Size -gt inf", "'inf' is not a number"},
      {"Size -gt 1e5", "'1e5' is not a number"},
  };
  for (const auto& c : cases) {
    auto f = parse(c.text);
    ASSERT_FALSE(f) << c.text;
    EXPECT_NE(f.error().find(c.said), std::string::npos) << c.text << " said: " << f.error();
  }
}

TEST(Filter, PositionsCountFromTheTextAsGiven) {
  auto f = parse("  {Status -eq Retry}");
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().find("position 15:"), std::string::npos) << f.error();
}

TEST(Filter, Bounded) {
  std::string longest(kMaxFilterLength - 16, ' ');
  EXPECT_TRUE(parse(longest + "Size -gt 1"));
  std::string too_long(kMaxFilterLength + 1, ' ');
  auto f = parse(too_long);
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().find("longer than 1024"), std::string::npos) << f.error();

  std::string terms = "Size -gt 1";
  for (size_t i = 1; i < kMaxFilterTerms; ++i) terms += " -and Size -gt 1";
  EXPECT_TRUE(parse(terms)) << parse(terms).error();
  f = parse(terms + " -and Size -gt 1");
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().find("more than 32 comparisons"), std::string::npos) << f.error();

  std::string nested = std::string(kMaxFilterDepth - 1, '(') + "Size -gt 1" + std::string(kMaxFilterDepth - 1, ')');
  EXPECT_TRUE(parse(nested)) << parse(nested).error();
  f = parse("(" + nested + ")");
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().find("nested deeper than 8"), std::string::npos) << f.error();
  std::string nots;
  for (int i = 0; i < 200; ++i) nots += "-not ";
  f = parse(nots + "Size -gt 1");
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().find("nested deeper"), std::string::npos) << f.error();
  EXPECT_FALSE(parse(std::string(1000, '(')));
  EXPECT_FALSE(parse(std::string(1000, '\'')));
}

// Hostile text of every kind: refused or parsed, never a crash, and always quickly (the work is
// bounded by the text's length).
TEST(Filter, HostileTextNeverCrashes) {
  const std::string pieces[] = {"Status", "-eq", "'x'", "\"y\"", "(", ")", "-and", "-or", "-not", "$null", "*",
                                "-like", "'[a'", "`", "'", "\"", "{", "}", "12KB", "-", "\xff", "\\", "Size"};
  uint32_t seed = 7;
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    int n = 1 + static_cast<int>(seed % 12);
    for (int i = 0; i < n; ++i) {
      seed = seed * 1103515245 + 12345;
      text += pieces[(seed >> 16) % std::size(pieces)];
      if ((seed >> 8) % 3) text += ' ';
    }
    auto f = parse(text);
    if (f) (void)f->matches(message());
  }
}

TEST(Filter, WildcardWorstCaseIsBounded) {
  std::string pattern;
  for (int i = 0; i < 100; ++i) pattern += "*a";
  pattern += "b";
  std::string text(10000, 'a');
  EXPECT_FALSE(wildcard_match(pattern, text));
}

}  // namespace
}  // namespace starling::mgmt
