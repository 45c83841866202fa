#include "mgmt/filter.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <ctime>
#include <optional>

#include "core/names.hpp"
#include "mgmt/values.hpp"

namespace starling::mgmt {

enum class Op { kEq, kNe, kGt, kLt, kGe, kLe, kLike, kNotLike };

struct Comparison {
  std::string property;
  PropertyKind kind = PropertyKind::kText;
  Op op = Op::kEq;
  bool null_value = false;  // $null: the property is empty or absent
  std::string text;         // kText: the value or the -like pattern
  double number = 0;
  int64_t time = 0;
};

struct Filter::Node {
  enum class Kind { kCompare, kAnd, kOr, kNot } kind = Kind::kCompare;
  std::vector<Node> children;
  Comparison compare;
};

namespace {

// --- wildcards -----------------------------------------------------------------------------------

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

// One UTF-8 character's octets from `t`: '?' matches a character, not an octet.
size_t char_length(std::string_view text, size_t t) {
  size_t n = 1;
  while (t + n < text.size() && (static_cast<unsigned char>(text[t + n]) & 0xC0) == 0x80) ++n;
  return n;
}

// The "[...]" set starting at `p`: the index of its ']', or npos when unclosed.
size_t set_end(std::string_view pattern, size_t p) {
  size_t close = pattern.find(']', p + 2);  // a ']' first in the set is a member
  return close;
}

bool in_set(std::string_view set, char c) {
  for (size_t i = 0; i < set.size(); ++i) {
    if (i + 2 < set.size() && set[i + 1] == '-') {
      if (c >= lower(set[i]) && c <= lower(set[i + 2])) return true;
      i += 2;
    } else if (lower(set[i]) == c) {
      return true;
    }
  }
  return false;
}

// Matches the pattern element at `p` against the text at `t`; on success moves both past it.
bool match_one(std::string_view pattern, size_t& p, std::string_view text, size_t& t) {
  char c = lower(text[t]);
  if (pattern[p] == '?') {
    ++p;
    t += char_length(text, t);
    return true;
  }
  if (pattern[p] == '[') {
    size_t close = set_end(pattern, p);
    if (close != std::string_view::npos) {
      if (!in_set(pattern.substr(p + 1, close - p - 1), c)) return false;
      p = close + 1;
      ++t;
      return true;
    }
  }
  size_t literal = pattern[p] == '`' && p + 1 < pattern.size() ? p + 1 : p;
  if (lower(pattern[literal]) != c) return false;
  p = literal + 1;
  ++t;
  return true;
}

// --- tokens --------------------------------------------------------------------------------------

struct Token {
  enum class Kind { kWord, kOperator, kString, kOpen, kClose, kEnd } kind = Kind::kEnd;
  std::string text;  // operators lower case, without the '-'
  size_t position = 0;  // 1-based
};

std::string at(size_t position) { return "position " + std::to_string(position) + ": "; }

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// A quoted string from `i` (at the quote). PowerShell's rules: '' inside '...', "" or `" inside "...".
Result<Token> quoted(std::string_view s, size_t& i) {
  char q = s[i];
  Token t{Token::Kind::kString, "", i + 1};
  for (++i; i < s.size(); ++i) {
    if (s[i] == q && i + 1 < s.size() && s[i + 1] == q) {
      t.text += q;
      ++i;
    } else if (q == '"' && s[i] == '`' && i + 1 < s.size() && s[i + 1] == '"') {
      t.text += '"';
      ++i;
    } else if (s[i] == q) {
      ++i;
      return t;
    } else {
      t.text += s[i];
    }
  }
  return make_error(at(t.position) + "the quote opened here is not closed");
}

Result<std::vector<Token>> tokenize(std::string_view s) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    char c = s[i];
    if (is_space(c)) {
      ++i;
    } else if (c == '(' || c == ')') {
      out.push_back({c == '(' ? Token::Kind::kOpen : Token::Kind::kClose, std::string(1, c), i + 1});
      ++i;
    } else if (c == '\'' || c == '"') {
      auto t = quoted(s, i);
      if (!t) return std::move(t).take_error();
      out.push_back(std::move(*t));
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return make_error(at(i + 1) + "a control character");
    } else {
      Token t{Token::Kind::kWord, "", i + 1};
      while (i < s.size() && !is_space(s[i]) && s[i] != '(' && s[i] != ')' && s[i] != '\'' && s[i] != '"' &&
             static_cast<unsigned char>(s[i]) >= 0x20) {
        t.text += s[i++];
      }
      bool op = t.text.size() > 1 && t.text[0] == '-' && std::isalpha(static_cast<unsigned char>(t.text[1]));
      if (op) {
        t.kind = Token::Kind::kOperator;
        t.text = core::to_lower(t.text.substr(1));
      }
      out.push_back(std::move(t));
    }
  }
  out.push_back({Token::Kind::kEnd, "", s.size() + 1});
  return out;
}

// --- values --------------------------------------------------------------------------------------

// A number as PowerShell writes one: 12, -3, 2.5, 10KB, 1.5MB (powers of 1024).
std::optional<double> parse_number(std::string_view s) {
  static constexpr std::pair<std::string_view, double> kSuffixes[] = {
      {"kb", 1024.0}, {"mb", 1024.0 * 1024}, {"gb", 1024.0 * 1024 * 1024}, {"tb", 1024.0 * 1024 * 1024 * 1024}};
  double scale = 1;
  std::string lowered = core::to_lower(s);
  for (const auto& [suffix, factor] : kSuffixes) {
    if (lowered.size() > suffix.size() && lowered.ends_with(suffix)) {
      scale = factor;
      lowered.resize(lowered.size() - suffix.size());
      break;
    }
  }
  if (lowered.empty() || lowered == "-" || lowered.starts_with('+')) return std::nullopt;
  double v = 0;
  auto [end, ec] = std::from_chars(lowered.data(), lowered.data() + lowered.size(), v, std::chars_format::fixed);
  if (ec != std::errc() || end != lowered.data() + lowered.size() || !std::isfinite(v)) return std::nullopt;
  return v * scale;
}

std::optional<int64_t> parse_iso_time(const std::string& s) {
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (!end || *end != 0) return std::nullopt;
  return static_cast<int64_t>(timegm(&tm));
}

std::optional<Op> parse_op(std::string_view name) {
  static constexpr std::pair<std::string_view, Op> kOps[] = {
      {"eq", Op::kEq}, {"ne", Op::kNe}, {"gt", Op::kGt}, {"lt", Op::kLt},
      {"ge", Op::kGe}, {"le", Op::kLe}, {"like", Op::kLike}, {"notlike", Op::kNotLike}};
  for (const auto& [n, op] : kOps) {
    if (n == name) return op;
  }
  return std::nullopt;
}

bool ordered(Op op) { return op == Op::kGt || op == Op::kLt || op == Op::kGe || op == Op::kLe; }

template <typename T>
bool compare_ordered(Op op, const T& a, const T& b) {
  switch (op) {
    case Op::kEq: return a == b;
    case Op::kGt: return a > b;
    case Op::kLt: return a < b;
    case Op::kGe: return a >= b;
    case Op::kLe: return a <= b;
    default: return false;
  }
}

bool is_empty(const Json& v) {
  return v.is_null() || (v.is_string() && v.get_ref<const std::string&>().empty()) || (v.is_array() && v.empty());
}

// A text comparison of one scalar; -ne and -notlike are handled by the caller as negations.
bool compare_text(const Comparison& c, const Json& v) {
  std::string text = v.is_string() ? v.get<std::string>() : v.is_null() ? "" : v.dump();
  if (c.op == Op::kLike || c.op == Op::kNotLike) return wildcard_match(c.text, text);
  return compare_ordered(c.op == Op::kNe ? Op::kEq : c.op, core::to_lower(text), c.text);
}

bool positive(const Comparison& c, const Json& v) {
  if (c.null_value) return is_empty(v);
  switch (c.kind) {
    case PropertyKind::kText:
      if (v.is_array()) {
        return std::any_of(v.begin(), v.end(), [&](const Json& e) {
          return compare_text(c, e.is_object() ? e.value("Address", Json()) : e);
        });
      }
      return compare_text(c, v);
    case PropertyKind::kNumber:
      return v.is_number() && compare_ordered(c.op == Op::kNe ? Op::kEq : c.op, v.get<double>(), c.number);
    case PropertyKind::kTime: {
      auto t = v.is_string() ? parse_iso_time(v.get<std::string>()) : std::nullopt;
      return t && compare_ordered(c.op == Op::kNe ? Op::kEq : c.op, *t, c.time);
    }
  }
  return false;
}

bool evaluate(const Filter::Node& n, const Json& object) {
  switch (n.kind) {
    case Filter::Node::Kind::kNot: return !evaluate(n.children[0], object);
    case Filter::Node::Kind::kAnd:
      return std::all_of(n.children.begin(), n.children.end(), [&](const auto& c) { return evaluate(c, object); });
    case Filter::Node::Kind::kOr:
      return std::any_of(n.children.begin(), n.children.end(), [&](const auto& c) { return evaluate(c, object); });
    case Filter::Node::Kind::kCompare: {
      const Comparison& c = n.compare;
      auto it = object.find(c.property);
      bool result = positive(c, it == object.end() ? Json() : *it);
      return (c.op == Op::kNe || c.op == Op::kNotLike) ? !result : result;
    }
  }
  return false;
}

// --- the parser ----------------------------------------------------------------------------------

class Parser {
 public:
  Parser(std::vector<Token> tokens, std::span<const FilterProperty> properties,
         std::chrono::system_clock::time_point now)
      : tokens_(std::move(tokens)), properties_(properties), now_(now) {}

  Result<Filter::Node> parse_all() {
    auto n = expression(0);
    if (!n) return n;
    if (peek().kind != Token::Kind::kEnd) return make_error(at(peek().position) + "unexpected '" + peek().text + "'");
    return n;
  }

  std::vector<std::string> mentioned;

 private:
  const Token& peek() const { return tokens_[next_]; }
  const Token& take() { return tokens_[next_ < tokens_.size() - 1 ? next_++ : next_]; }

  bool at_junction() const {
    return peek().kind == Token::Kind::kOperator && (peek().text == "and" || peek().text == "or");
  }

  // unary (-and unary)* or unary (-or unary)*: mixing the two needs parentheses, so that nobody
  // has to know which binds tighter.
  Result<Filter::Node> expression(size_t depth) {
    auto first = unary(depth);
    if (!first || !at_junction()) return first;
    Filter::Node joined;
    std::string junction = peek().text;
    joined.kind = junction == "and" ? Filter::Node::Kind::kAnd : Filter::Node::Kind::kOr;
    joined.children.push_back(std::move(*first));
    while (at_junction()) {
      if (peek().text != junction) {
        return make_error(at(peek().position) + "-and and -or mixed: group them with parentheses");
      }
      take();
      auto next = unary(depth);
      if (!next) return next;
      joined.children.push_back(std::move(*next));
    }
    return joined;
  }

  Result<Filter::Node> unary(size_t depth) {
    if (depth >= kMaxFilterDepth) {
      return make_error(at(peek().position) + "nested deeper than " + std::to_string(kMaxFilterDepth) + " levels");
    }
    const Token& t = peek();
    if (t.kind == Token::Kind::kOperator && t.text == "not") {
      take();
      auto inner = unary(depth + 1);
      if (!inner) return inner;
      Filter::Node n;
      n.kind = Filter::Node::Kind::kNot;
      n.children.push_back(std::move(*inner));
      return n;
    }
    if (t.kind == Token::Kind::kOpen) {
      take();
      auto inner = expression(depth + 1);
      if (!inner) return inner;
      if (peek().kind != Token::Kind::kClose) return make_error(at(peek().position) + "expected ')'");
      take();
      return inner;
    }
    return comparison();
  }

  Result<const FilterProperty*> property(const Token& t) {
    if (t.kind != Token::Kind::kWord) {
      return make_error(at(t.position) + "expected a property name" + (t.text.empty() ? "" : ", found '" + t.text + "'"));
    }
    for (const auto& p : properties_) {
      if (core::iequals(p.name, t.text)) return &p;
    }
    std::string known;
    for (const auto& p : properties_) known += (known.empty() ? "" : ", ") + std::string(p.name);
    return make_error(at(t.position) + "no property '" + t.text + "'; the properties are: " + known);
  }

  Result<Filter::Node> comparison() {
    auto p = property(take());
    if (!p) return std::move(p).take_error();
    const Token& op_token = take();
    auto op = op_token.kind == Token::Kind::kOperator ? parse_op(op_token.text) : std::nullopt;
    if (!op) {
      return make_error(at(op_token.position) + "expected a comparison after " + std::string((*p)->name) +
                        " (-eq, -ne, -gt, -lt, -ge, -le, -like, -notlike)");
    }
    if (++terms_ > kMaxFilterTerms) {
      return make_error(at(op_token.position) + "more than " + std::to_string(kMaxFilterTerms) + " comparisons");
    }
    Filter::Node n;
    n.compare.property = std::string((*p)->name);
    n.compare.kind = (*p)->kind;
    n.compare.op = *op;
    if (auto v = value(take(), op_token.text, n.compare); !v) return std::move(v).take_error();
    if (std::find(mentioned.begin(), mentioned.end(), n.compare.property) == mentioned.end()) {
      mentioned.push_back(n.compare.property);
    }
    return n;
  }

  Result<void> value(const Token& t, const std::string& op_name, Comparison& c) {
    std::string where = at(t.position);
    if (t.kind != Token::Kind::kWord && t.kind != Token::Kind::kString) {
      return make_error(where + "expected a value after -" + op_name);
    }
    bool like = c.op == Op::kLike || c.op == Op::kNotLike;
    if (t.kind == Token::Kind::kWord && core::iequals(t.text, "$null")) {
      if (c.op != Op::kEq && c.op != Op::kNe) return make_error(where + "$null goes only with -eq and -ne");
      c.null_value = true;
      return {};
    }
    auto number = parse_number(t.text);
    if (t.kind == Token::Kind::kWord && !number) {
      return make_error(where + "'" + t.text + "' is not a number: quote text ('" + t.text + "')");
    }
    if (like && c.kind != PropertyKind::kText) {
      return make_error(where + "-" + op_name + " compares text, and " + c.property + " is a " +
                        (c.kind == PropertyKind::kNumber ? "number" : "time"));
    }
    switch (c.kind) {
      case PropertyKind::kText:
        c.text = like ? t.text : core::to_lower(t.text);
        if (like) return check_pattern(t);
        return {};
      case PropertyKind::kNumber:
        if (!number) return make_error(where + c.property + " is a number; '" + t.text + "' is not");
        c.number = *number;
        return {};
      case PropertyKind::kTime: {
        auto time = parse_time(t.text, now_);
        if (!time || t.text.empty()) {
          return make_error(where + c.property + " is a time; '" + t.text +
                            "' is not (2026-11-25T17:00:00Z, 2026-11-25, 90m, 2h, 3d ago, or Unix seconds)");
        }
        c.time = *time;
        return {};
      }
    }
    return {};
  }

  static Result<void> check_pattern(const Token& t) {
    for (size_t i = 0; i < t.text.size(); ++i) {
      if (t.text[i] == '`') {
        ++i;
      } else if (t.text[i] == '[') {
        size_t close = set_end(t.text, i);
        if (close == std::string::npos) {
          return make_error(at(t.position) + "the wildcard pattern opens '[' without closing it (write `[ for a '[')");
        }
        i = close;
      }
    }
    return {};
  }

  std::vector<Token> tokens_;
  size_t next_ = 0;
  size_t terms_ = 0;
  std::span<const FilterProperty> properties_;
  std::chrono::system_clock::time_point now_;
};

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

bool wildcard_match(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0;
  size_t star_p = std::string_view::npos, star_t = 0;
  // Greedy with one resumption point: only the last '*' ever needs to take more.
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star_p = ++p;
      star_t = t;
    } else if (p < pattern.size() && match_one(pattern, p, text, t)) {
      continue;
    } else if (star_p != std::string_view::npos) {
      p = star_p;
      star_t += char_length(text, star_t);
      t = star_t;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Result<Filter> Filter::parse(std::string_view text, std::span<const FilterProperty> properties,
                             std::chrono::system_clock::time_point now) {
  if (text.size() > kMaxFilterLength) {
    return make_error("the filter is longer than " + std::to_string(kMaxFilterLength) + " characters");
  }
  std::string_view body = trimmed(text);
  size_t offset = static_cast<size_t>(body.data() - text.data());
  // PowerShell's script-block spelling: -Filter {Status -eq 'Retry'}.
  if (body.size() >= 2 && body.front() == '{' && body.back() == '}') {
    body = body.substr(1, body.size() - 2);
    ++offset;
  }
  if (trimmed(body).empty()) return make_error("the filter is empty (for example: Status -eq 'Retry')");
  auto tokens = tokenize(body);
  if (!tokens) return std::move(tokens).take_error();
  for (auto& t : *tokens) t.position += offset;  // positions in the text as given
  Parser parser(std::move(*tokens), properties, now);
  auto root = parser.parse_all();
  if (!root) return std::move(root).take_error();
  Filter f;
  f.root_ = std::make_shared<const Node>(std::move(*root));
  f.mentioned_ = std::move(parser.mentioned);
  return f;
}

bool Filter::matches(const Json& object) const { return !root_ || evaluate(*root_, object); }

bool Filter::mentions(std::string_view property) const {
  return std::find(mentioned_.begin(), mentioned_.end(), property) != mentioned_.end();
}

}  // namespace starling::mgmt
