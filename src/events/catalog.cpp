#include "events/catalog.hpp"

#include "core/names.hpp"

namespace starling::events {

namespace {

constexpr EventDefinition kCatalog[] = {
    {kConfigurationUpdated, Level::kInformation, "TransportService", "ConfigurationUpdated",
     "The configuration changed ({Change}) and was applied to the running server without a "
     "restart."},
    {kStartTlsCertificateNotFound, Level::kWarning, "TransportService",
     "StartTlsCertificateNotFound",
     "The {ConnectorKind} connector {Connector} offers STARTTLS but no certificate of any key type "
     "(RSA or ECDSA) qualifies for {Fqdn}: {Condition}. STARTTLS is not offered until this is fixed. Fix: {Fix}"},
    {kStartTlsCertificateExpired, Level::kError, "TransportService", "StartTlsCertificateExpired",
     "The {KeyType} certificate {Thumbprint} selected for the {ConnectorKind} connector {Connector} "
     "({Fqdn}) expired on {NotAfter}. It is still offered; replace it."},
    {kStartTlsCertificateExpiresSoon, Level::kWarning, "TransportService",
     "StartTlsCertificateExpiresSoon",
     "The {KeyType} certificate {Thumbprint} selected for the {ConnectorKind} connector {Connector} "
     "({Fqdn}) expires in {HoursRemaining} hours, on {NotAfter}."},
    {kStartTlsCertificateRestored, Level::kInformation, "TransportService",
     "StartTlsCertificateRestored",
     "The {ConnectorKind} connector {Connector} ({Fqdn}) has a certificate again: {Thumbprint} "
     "({Subject}). STARTTLS is offered."},
    {kManagementChange, Level::kInformation, "Management", "ManagementChange",
     "{User} ran {Command}: {Result}"},
    {kManagementAccessDenied, Level::kWarning, "Management", "ManagementAccessDenied",
     "{User} was refused {Command}: it needs the {RequiredRole} role ({Count} refusal(s) of "
     "{User} since the previous record; one record a minute at most)."},
    {kSmtpSendTlsRequiredFailed, Level::kError, "TransportService", "SmtpSendTlsRequiredFailed",
     "The send connector {Connector} requires TLS, but the session with {RemoteHost} could not use "
     "it: {Reason}. The messages stay queued."},
    {kOutboundDeliveryDeferred, Level::kWarning, "TransportService", "OutboundDeliveryDeferred",
     "Delivery of {QueueId} to {Recipient} through {NextHop} was deferred: {Reply}"},
    {kOutboundDeliveryFailed, Level::kWarning, "TransportService", "OutboundDeliveryFailed",
     "Delivery of {QueueId} to {Recipient} through {NextHop} failed: {Reply}. The sender gets a "
     "non-delivery report."},
    {kQueueFileCorrupt, Level::kError, "TransportService", "QueueFileCorrupt",
     "The queue file {File} is damaged ({Reason}) and was moved to {MovedTo}; the other messages "
     "are delivered."},
    {kSmtpAuthenticationFailed, Level::kWarning, "TransportService", "SmtpAuthenticationFailed",
     "A client at {ClientIp} failed to authenticate as {User} on the receive connector "
     "{Connector}: wrong password, unknown user, or a disabled mailbox."},
};

}  // namespace

std::string_view level_name(Level l) {
  switch (l) {
    case Level::kInformation: return "Information";
    case Level::kWarning: return "Warning";
    case Level::kError: return "Error";
  }
  return "?";
}

std::optional<Level> parse_level(std::string_view s) {
  for (Level l : {Level::kInformation, Level::kWarning, Level::kError}) {
    if (core::iequals(s, level_name(l))) return l;
  }
  return std::nullopt;
}

std::span<const EventDefinition> catalog() { return kCatalog; }

const EventDefinition* find_event(int id) {
  for (const auto& e : kCatalog) {
    if (e.id == id) return &e;
  }
  return nullptr;
}

}  // namespace starling::events
