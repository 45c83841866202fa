#include "tls/distinguished_name.hpp"

#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <unordered_set>

#include "core/names.hpp"
#include "tls/openssl_error.hpp"

namespace starling::tls {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t'; }
bool is_separator(char c) { return c == ',' || c == ';'; }

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Exchange's and Windows' spellings for the attributes OpenSSL knows by other short names.
std::string openssl_field(const std::string& key) {
  std::string k = core::to_lower(key);
  if (k == "s") return "ST";
  if (k == "e" || k == "email") return "emailAddress";
  if (k == "street") return "street";
  if (k == "serialnumber") return "serialNumber";
  if (k == "g" || k == "givenname") return "GN";
  if (k == "t") return "title";
  return key;
}

}  // namespace

Result<std::vector<Rdn>> split_distinguished_name(std::string_view dn) {
  std::vector<Rdn> out;
  size_t i = 0;
  auto skip_spaces = [&] { while (i < dn.size() && is_space(dn[i])) ++i; };
  skip_spaces();
  if (i == dn.size()) return make_error("the subject is empty");
  while (i < dn.size()) {
    skip_spaces();
    size_t eq = dn.find('=', i);
    if (eq == std::string_view::npos) {
      return make_error("expected KEY=value in the subject at \"" + std::string(dn.substr(i)) +
                        "\"");
    }
    std::string key(dn.substr(i, eq - i));
    while (!key.empty() && is_space(key.back())) key.pop_back();
    if (key.empty() || !std::all_of(key.begin(), key.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
        })) {
      return make_error("invalid attribute name \"" + key + "\" in the subject");
    }
    i = eq + 1;
    skip_spaces();
    std::string value;
    size_t kept = 0;  // length of value without unescaped trailing spaces
    bool quoted = i < dn.size() && dn[i] == '"';
    if (quoted) ++i;
    for (; i < dn.size(); ++i) {
      char c = dn[i];
      if (quoted ? c == '"' : is_separator(c)) break;
      if (c == '\\') {
        if (++i == dn.size()) return make_error("the subject ends in a lone backslash");
        int hi = hex_digit(dn[i]);
        int lo = i + 1 < dn.size() ? hex_digit(dn[i + 1]) : -1;
        if (hi >= 0 && lo >= 0) {
          value += static_cast<char>(hi * 16 + lo);
          ++i;
        } else {
          value += dn[i];
        }
        kept = value.size();
        continue;
      }
      value += c;
      if (quoted || !is_space(c)) kept = value.size();
    }
    if (quoted) {
      if (i == dn.size()) return make_error("unterminated quote in the subject for " + key);
      ++i;  // closing quote
      skip_spaces();
      if (i < dn.size() && !is_separator(dn[i])) {
        return make_error("unexpected text after the quoted value of " + key + " in the subject");
      }
    }
    value.resize(kept);
    if (value.empty()) return make_error("empty value for " + key + " in the subject");
    out.emplace_back(std::move(key), std::move(value));
    if (i < dn.size()) {
      ++i;  // separator
      skip_spaces();
      if (i == dn.size()) return make_error("the subject ends with a separator");
    }
  }
  return out;
}

Result<void> set_distinguished_name(X509_NAME* name, std::string_view dn) {
  auto rdns = split_distinguished_name(dn);
  if (!rdns) return std::move(rdns).take_error();
  clear_openssl_errors();
  while (X509_NAME_entry_count(name) > 0) X509_NAME_ENTRY_free(X509_NAME_delete_entry(name, 0));
  for (auto it = rdns->rbegin(); it != rdns->rend(); ++it) {
    std::string field = openssl_field(it->first);
    if (OBJ_txt2nid(field.c_str()) == NID_undef) {
      clear_openssl_errors();
      return make_error("unknown attribute \"" + it->first + "\" in the subject");
    }
    // OpenSSL enforces each attribute's string type and size (C is two letters, ub-common-name
    // is 64 characters: RFC 5280 Appendix A.1).
    if (X509_NAME_add_entry_by_txt(name, field.c_str(), MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(it->second.data()),
                                   static_cast<int>(it->second.size()), -1, 0) != 1) {
      return make_error(openssl_error("invalid value \"" + it->second + "\" for " + it->first +
                                      " in the subject"));
    }
  }
  return {};
}

std::string common_name(const X509_NAME* name) {
  int cn = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (cn < 0) return {};
  const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, cn));
  unsigned char* utf8 = nullptr;
  int n = ASN1_STRING_to_UTF8(&utf8, s);
  std::string out;
  if (n >= 0) out.assign(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
  OPENSSL_free(utf8);
  return out;
}

std::vector<std::string> certificate_domains(const std::string& cn,
                                             const std::vector<std::string>& domains) {
  std::vector<std::string> out;
  std::unordered_set<std::string> seen;  // lower case: linear in the number of names
  auto add = [&](const std::string& d) {
    if (!d.empty() && seen.insert(core::to_lower(d)).second) out.push_back(d);
  };
  add(cn);
  for (const auto& d : domains) add(d);
  return out;
}

X509_EXTENSION* make_subject_alt_name(const std::vector<std::string>& dns_names) {
  GENERAL_NAMES* names = sk_GENERAL_NAME_new_null();
  if (!names) return nullptr;
  bool ok = true;
  for (const auto& d : dns_names) {
    ASN1_IA5STRING* s = ASN1_IA5STRING_new();
    GENERAL_NAME* gn = GENERAL_NAME_new();
    if (!s || !gn || ASN1_STRING_set(s, d.data(), static_cast<int>(d.size())) != 1) {
      ASN1_IA5STRING_free(s);
      GENERAL_NAME_free(gn);
      ok = false;
      break;
    }
    GENERAL_NAME_set0_value(gn, GEN_DNS, s);
    if (sk_GENERAL_NAME_push(names, gn) == 0) {
      GENERAL_NAME_free(gn);
      ok = false;
      break;
    }
  }
  X509_EXTENSION* ext = ok ? X509V3_EXT_i2d(NID_subject_alt_name, 0, names) : nullptr;
  GENERAL_NAMES_free(names);
  return ext;
}

}  // namespace starling::tls
