// The certificate picture of a server: every certificate's properties (with chain trust against
// the system and the store's own roots) and, for every connector that offers TLS, what the
// selection rule chooses or why it cannot. Computed once per configuration change and shared by
// the listeners, the events (12014/12016/12018), get-certificate and test-starttls, so they
// always agree.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/connector.hpp"
#include "core/selection.hpp"
#include "store/store.hpp"
#include "tls/sni.hpp"

namespace starling::diag {

struct CertificateRecord {
  store::StoredCertificate stored;
  core::Certificate props;
  bool pending() const { return stored.certificate_pem.empty(); }
};

Result<std::vector<CertificateRecord>> load_certificates(store::Store& store, core::SysTime now);

struct ConnectorVerdict {
  std::string kind;  // "Receive" or "Send"
  std::string name;
  std::string fqdn;  // effective
  std::string tls_certificate_name;
  core::Selection selection;
  std::vector<core::Binding> bindings;  // receive connectors
};

// The connectors that offer TLS: enabled receive connectors with Tls in AuthMechanism, and
// enabled send connectors that do not ignore STARTTLS.
Result<std::vector<ConnectorVerdict>> evaluate_connectors(store::Store& store, const core::ServerSettings& settings,
                                                          const std::vector<CertificateRecord>& certs,
                                                          core::SysTime now,
                                                          std::chrono::hours warning_window);

// "(a) no certificate lists mail.contoso.test in its CertificateDomains", "(b) ...", "(c) ...",
// "(d) ...", followed by each refused certificate's thumbprint and reason.
std::string condition_text(const ConnectorVerdict& v);

// The fields of event 12014 for a connector without a certificate: Fqdn, Connector,
// ConnectorKind, Condition, Thumbprints, Fix (and TlsCertificateName when pinned).
std::vector<std::pair<std::string, std::string>> not_found_fields(const ConnectorVerdict& v);
// Fields naming the chosen certificate (the restored event 12020): served_fields of the primary.
std::vector<std::pair<std::string, std::string>> chosen_fields(const ConnectorVerdict& v);
// Fields naming one served certificate: Thumbprint, KeyType, Subject, Connector, ConnectorKind,
// Fqdn, NotAfter, HoursRemaining, and Certificates (every one served, "RSA 1A2B..., ECDSA ...").
std::vector<std::pair<std::string, std::string>> served_fields(const ConnectorVerdict& v,
                                                               const core::ServedCertificate& served);
// "RSA 1A2B..., ECDSA 3C4D...": the certificates a selection serves, primary first.
std::string served_list(const core::Selection& s);

// Event 12016 (expired) or 12018 (expires within the window) for one served certificate: a
// connector whose ECDSA certificate expires while its RSA one is fine is warned about the ECDSA
// one. `object_suffix` is appended to the connector's event object ("" for the first by key
// type, RSA, ":ECDSA" for the other), so each certificate's warning is suppressed on its own.
struct ExpiryWarning {
  bool expired = false;
  std::string object_suffix;
  std::vector<std::pair<std::string, std::string>> fields;
};
std::vector<ExpiryWarning> expiry_warnings(const ConnectorVerdict& v);

// The SNI table of a configuration: each name a certificate lists, exact or wildcard, goes to
// the best SMTP-enabled certificate for it by the selection rule (valid at `now` first).
// `names`, when given, receives the names added, sorted. Linear in the names of the store.
std::shared_ptr<const tls::SniTable> build_sni_table(const std::vector<CertificateRecord>& certs,
                                                     core::SysTime now,
                                                     std::vector<std::string>* names = nullptr);

// The PEM certificates of a chain, one string each.
std::vector<std::string> split_pem(const std::string& pem);

// Metrics for Prometheus from the verdicts, replacing the previous ones: per connector, the
// 12014 gauge (1 without a certificate, else 0) and the seconds until the chosen one expires.
void publish_certificate_metrics(const std::vector<ConnectorVerdict>& verdicts);

// The certificates that are not pending requests, as the selection rule reads them.
std::vector<core::Certificate> selectable(const std::vector<CertificateRecord>& certs);

}  // namespace starling::diag
