#include "tls/request_info.hpp"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <unordered_set>

#include "core/names.hpp"
#include "tls/openssl_error.hpp"

namespace starling::tls {

Result<RequestInfo> describe_request(const std::string& request_pem) {
  clear_openssl_errors();
  BIO* bio = BIO_new_mem_buf(request_pem.data(), static_cast<int>(request_pem.size()));
  X509_REQ* req = PEM_read_bio_X509_REQ(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!req) return make_error(openssl_error("not a PEM certificate request"));
  RequestInfo info;
  X509_NAME* name = X509_REQ_get_subject_name(req);
  BIO* out = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(out, name, 0,
                     (XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB & ~XN_FLAG_SEP_MASK) |
                         XN_FLAG_SEP_CPLUS_SPC | XN_FLAG_DN_REV);
  char* data = nullptr;
  long n = BIO_get_mem_data(out, &data);
  info.subject.assign(data, static_cast<size_t>(n));
  BIO_free(out);
  std::unordered_set<std::string> seen;  // lower case: linear in the number of names
  auto add = [&](std::string d) {
    if (!d.empty() && seen.insert(core::to_lower(d)).second) info.domains.push_back(std::move(d));
  };
  int cn = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (cn >= 0) {
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, cn)));
    if (len >= 0) add(std::string(reinterpret_cast<char*>(utf8), static_cast<size_t>(len)));
    OPENSSL_free(utf8);
  }
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req);
  for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts); ++i) {
    X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts, i);
    if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name) continue;
    auto* names = static_cast<GENERAL_NAMES*>(X509V3_EXT_d2i(ext));
    for (int k = 0; names && k < sk_GENERAL_NAME_num(names); ++k) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, k);
      if (gn->type != GEN_DNS) continue;
      add(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                      static_cast<size_t>(ASN1_STRING_length(gn->d.dNSName))));
    }
    GENERAL_NAMES_free(names);
  }
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  X509_REQ_free(req);
  clear_openssl_errors();
  return info;
}

}  // namespace starling::tls
