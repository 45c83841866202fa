#include "app/cli_catalog.hpp"

#include <cctype>

#include "core/names.hpp"
#include "mgmt/values.hpp"

namespace starling::app {
namespace {

using G = CommandGroup;
using Options = std::vector<CliOption>;

CliOption opt(std::string name, std::string value, std::string help, std::vector<std::string> aliases = {}) {
  return CliOption{std::move(name), std::move(value), std::move(help), std::move(aliases), {}};
}

// "MaxMessageSize" -> "max-message-size", "RequireTLS" -> "require-tls", "SmtpUtf8Enabled" ->
// "smtp-utf8-enabled": a dash where a word starts (an upper-case letter after a lower-case one
// or a digit, or the last capital of an acronym followed by lower case).
std::string dashed(std::string_view property) {
  std::string out;
  for (size_t i = 0; i < property.size(); ++i) {
    auto c = static_cast<unsigned char>(property[i]);
    if (i > 0 && std::isupper(c)) {
      auto prev = static_cast<unsigned char>(property[i - 1]);
      bool next_lower = i + 1 < property.size() && std::islower(static_cast<unsigned char>(property[i + 1]));
      if (std::islower(prev) || std::isdigit(prev) || (std::isupper(prev) && next_lower)) out += '-';
    }
    out += static_cast<char>(std::tolower(c));
  }
  return out;
}

CliOption prop(std::string property, std::string value, std::string help) {
  CliOption o = opt(dashed(property), std::move(value), std::move(help));
  o.property = std::move(property);
  return o;
}

Options join(Options a, const Options& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

CliCommand command(std::string name, std::string alias, G group, std::string summary, std::string identity,
                   std::string identity_help, Options options = {}) {
  CliCommand c;
  c.name = std::move(name);
  c.alias = std::move(alias);
  c.group = group;
  c.summary = std::move(summary);
  c.identity = std::move(identity);
  c.identity_help = std::move(identity_help);
  c.options = std::move(options);
  return c;
}

CliCommand required(CliCommand c) {
  c.identity_required = true;
  return c;
}

CliCommand properties(CliCommand c) {
  c.property_options = true;
  return c;
}

// --- option sets shared by several commands ------------------------------------------------------

const std::string kThumbprintHelp = "the certificate's thumbprint (40 hex digits, as get-certificate shows it)";

Options certificate_identity() { return {opt("thumbprint", "THUMBPRINT", kThumbprintHelp)}; }

Options receive_connector_properties() {
  return {
      prop("Name", "NAME", "the connector's name: 1-64 characters without '\\'"),
      prop("Bindings", "LIST", "IP:PORT addresses to listen on, e.g. 0.0.0.0:25,[::]:25"),
      prop("RemoteIPRanges", "LIST",
           "client addresses this connector serves: IP, IP/BITS or IP-IP; a client is served by the "
           "connector with the most specific range on the address it reached"),
      prop("Fqdn", "NAME",
           "the name in the banner and the EHLO reply; selects the STARTTLS certificate (empty: the "
           "server's FQDN, shown as inherited)"),
      prop("AuthMechanism", "LIST",
           "None, or Tls, BasicAuth, BasicAuthRequireTLS, ExternalAuthoritative (comma-separated)"),
      prop("PermissionGroups", "LIST", "AnonymousUsers, ExchangeUsers, ExchangeServers, Partners, Custom"),
      prop("RequireTLS", "BOOL", "refuse mail before STARTTLS (needs Tls in AuthMechanism)"),
      prop("TlsCertificateName", "NAME",
           "<I>issuer<S>subject: the STARTTLS certificate to use (empty: selected by Fqdn)"),
      prop("Banner", "TEXT", "the greeting, starting with 220 (empty: 220 FQDN and the server's words)"),
      prop("MaxMessageSize", "SIZE", "larger messages are refused (552 5.3.4); announced in EHLO SIZE"),
      prop("MaxRecipientsPerMessage", "N", "recipients accepted in one transaction"),
      prop("MaxHeaderSize", "SIZE", "the largest header section accepted"),
      prop("ConnectionTimeout", "DURATION", "the longest a connection may last"),
      prop("ConnectionInactivityTimeout", "DURATION",
           "idle time before the connection is closed (not above ConnectionTimeout)"),
      prop("MaxInboundConnection", "N", "connections open at once on this connector"),
      prop("MaxInboundConnectionPerSource", "N", "connections open at once from one client address"),
      prop("MaxProtocolErrors", "N", "protocol errors before the connection is closed"),
      prop("ProtocolLoggingLevel", "LEVEL", "None or Verbose (log every command and reply)"),
      prop("Enabled", "BOOL", "false: the connector listens no more"),
      prop("PipeliningEnabled", "BOOL", "offer PIPELINING (RFC 2920)"),
      prop("EightBitMimeEnabled", "BOOL", "offer 8BITMIME (RFC 6152)"),
      prop("ChunkingEnabled", "BOOL", "offer CHUNKING, BDAT (RFC 3030)"),
      prop("SizeEnabled", "BOOL", "offer SIZE (RFC 1870)"),
      prop("EnhancedStatusCodesEnabled", "BOOL", "offer ENHANCEDSTATUSCODES (RFC 2034)"),
      prop("SmtpUtf8Enabled", "BOOL", "offer SMTPUTF8 (RFC 6531)"),
      prop("DeliveryStatusNotificationEnabled", "BOOL", "offer DSN (RFC 3461): RET, ENVID, NOTIFY, ORCPT"),
  };
}

Options send_connector_properties() {
  CliOption credential = opt("authentication-credential-file", "FILE",
                             "the smart host's user name (first line) and password (second line), read "
                             "from FILE with your rights; '-' asks at the terminal; an empty file clears it");
  credential.property = "AuthenticationCredential";
  return {
      prop("Name", "NAME", "the connector's name: 1-64 characters without '\\'"),
      prop("AddressSpaces", "LIST",
           "[smtp:]DOMAIN[;COST]: contoso.com, *.contoso.com (and subdomains) or * (all); the most "
           "specific match wins, then the lowest cost"),
      prop("SmartHosts", "LIST", "host, host:port, [ip] or [ip]:port to route through (needs DNSRoutingEnabled false)"),
      prop("DNSRoutingEnabled", "BOOL", "route by MX records; false: through SmartHosts"),
      prop("Port", "N", "the port of MX hosts and of smart hosts given without one"),
      prop("Fqdn", "NAME", "the name said in EHLO; selects the client certificate (empty: the server's FQDN)"),
      prop("RequireTLS", "BOOL", "insist on STARTTLS: no delivery in clear"),
      prop("IgnoreSTARTTLS", "BOOL", "never use STARTTLS (not with RequireTLS)"),
      prop("TlsAuthLevel", "LEVEL", "EncryptionOnly, CertificateValidation or DomainValidation (needs TlsDomain)"),
      prop("TlsDomain", "DOMAIN", "the name the next hop's certificate must carry for DomainValidation"),
      prop("TlsCertificateName", "NAME", "<I>issuer<S>subject: the client certificate to present"),
      prop("MaxMessageSize", "SIZE", "larger messages are not sent through this connector"),
      prop("ConnectionInactivityTimeout", "DURATION", "idle time before an outbound connection is closed"),
      prop("Enabled", "BOOL", "false: the connector routes nothing"),
      prop("SourceTransportServers", "LIST", "the servers that may use this connector"),
      prop("SmartHostAuthMechanism", "MECHANISM",
           "None, BasicAuth, BasicAuthRequireTLS (AUTH only after STARTTLS) or ExternalAuthoritative; "
           "anything but None needs smart hosts"),
      credential,
      prop("UseExternalDNSServersEnabled", "BOOL",
           "resolve with the transport server's ExternalDNSServers instead of the system resolver"),
      prop("SmtpMaxMessagesPerConnection", "N", "messages sent over one connection before a new one (1-1000)"),
      prop("ProtocolLoggingLevel", "LEVEL", "None or Verbose (log every command and reply, docs/protocol-logs.md)"),
  };
}

Options transport_server_properties() {
  return {
      prop("TransientFailureRetryCount", "N", "quick retries of a next hop that failed (0-15; 0: none)"),
      prop("TransientFailureRetryInterval", "DURATION", "time between those quick retries (at most 12:00:00)"),
      prop("OutboundConnectionFailureRetryInterval", "DURATION",
           "then, time between retries of that next hop (at most 20.00:00:00)"),
      prop("MessageRetryInterval", "DURATION",
           "retry of a message refused on its own while its next hop works (at most 1.00:00:00)"),
      prop("MessageExpirationTimeout", "DURATION",
           "undelivered after this: fails with 4.4.7 and a non-delivery report (at most 90.00:00:00)"),
      prop("DelayNotificationTimeout", "DURATION", "queued after this: one delay report to the sender"),
      prop("MaxOutboundConnections", "N", "outbound connections at once, in all"),
      prop("MaxPerDomainOutboundConnections", "N", "outbound connections at once to one next hop"),
      prop("ExternalDNSServers", "LIST",
           "DNS servers for send connectors with UseExternalDNSServersEnabled: IPv4[:port] or [IPv6][:port]"),
      prop("ExternalPostmasterAddress", "ADDRESS",
           "From: of reports (empty: postmaster@ the default accepted domain)"),
      prop("MessageTrackingLogMaxAge", "DURATION", "message tracking files older than this are removed"),
      prop("MessageTrackingLogMaxDirectorySize", "SIZE", "the size limit of the message tracking directory"),
      prop("MessageTrackingLogMaxFileSize", "SIZE", "a message tracking file is closed at this size"),
      prop("MessageTrackingLogEnabled", "BOOL", "write the message tracking log (true, the default, or false)"),
      prop("PoisonThreshold", "N", "crashes with a message in flight before it goes to the Poison queue (1-10)"),
      prop("EventLogMaxAge", "DURATION", "events older than this are removed"),
      prop("EventLogMaxCount", "N", "the most events kept; the oldest go first (1-10000000)"),
      prop("MetricsListen", "IP:PORT",
           "serve Prometheus metrics at http://IP:PORT/metrics, e.g. 127.0.0.1:9325 (empty, the default: off)"),
  };
}

Options role_options(const std::string& verb) {
  return {
      opt("role", "ROLE", verb + ": ViewOnlyAdministrator, ServerAdministrator or OrganizationAdministrator"),
      opt("user", "USER", "the Unix user holding the role"),
      opt("group", "GROUP", "the Unix group holding the role (every member has it)"),
  };
}

Options recipient_addresses(bool adding) {
  Options o{
      opt("email-addresses", "LIST", "the other addresses (smtp:a@x,b@x); '' or $null: none"),
  };
  if (adding) {
    o.push_back(opt("add-email-addresses", "LIST", "addresses to add"));
    o.push_back(opt("remove-email-addresses", "LIST", "addresses to remove (not the primary one)"));
  }
  return o;
}

const std::string kPasswordFileHelp =
    "the password for SMTP AUTH: the first line of FILE, read with your rights; '-' asks twice at the "
    "terminal; an empty file (/dev/null) removes it";
const std::string kDeliveryTargetHelp =
    "Maildir, lmtp:HOST:PORT, lmtp:[IPv6]:PORT or lmtp:/path/to/socket (empty: the domain's)";

std::vector<CliCommand> certificate_commands() {
  return {
      command("get-certificate", "Get-ExchangeCertificate", G::kCertificates,
              "show the certificates in the store", "THUMBPRINT", "show only this certificate",
              join(certificate_identity(),
                   {opt("domain", "NAME",
                        "the certificates covering NAME in the selection rule's order (the first is the one "
                        "in use), then those that cover it but do not qualify")})),
      command("new-certificate", "New-ExchangeCertificate", G::kCertificates,
              "create a self-signed certificate, or a key and a certificate request", "", "",
              {opt("domain", "NAME", "a name the certificate covers (repeatable; default: the server name and FQDN)",
                   {"domain-name"}),
               opt("subject", "DN", "the subject, e.g. CN=mail.contoso.com (default: CN= the first domain)",
                   {"subject-name"}),
               opt("key-type", "TYPE", "rsa2048 (default), rsa3072, rsa4096, ecdsa-p256 or ecdsa-p384"),
               opt("key-size", "BITS", "an RSA key of BITS bits, 2048 to 8192 in steps of 1024 (default: the key type's size)"),
               opt("exportable", "", "the private key may be exported later", {"private-key-exportable"}),
               opt("services", "SERVICES", "enable it for these services (default SMTP; not with --request)"),
               opt("friendly-name", "NAME", "a label for people (default Starling)"),
               opt("validity-days", "N", "days the self-signed certificate is valid (default: 5 years)"),
               opt("request", "FILE",
                   "write a PKCS#10 request to FILE instead; the key waits in the store as a PendingRequest",
                   {"generate-request"}),
               opt("binary", "", "write the request in DER instead of PEM", {"binary-encoded"}),
               opt("ecdsa", "",
                   "also create an ECDSA P-256 certificate for the same names and services beside the RSA one "
                   "(dual certificates: ECDSA for clients that offer it, RSA for the others; not with an "
                   "ecdsa --key-type or --request)")}),
      required(command("import-certificate", "Import-ExchangeCertificate", G::kCertificates,
                       "import a certificate (PEM, DER, PKCS#7 or PKCS#12)", "FILE",
                       "the file to import, read with your rights",
                       {opt("file", "FILE", "the file to import (instead of the argument)", {"file-name"}),
                        opt("password-file", "FILE",
                            "the PKCS#12 password, read from FILE with your rights; '-' asks at the "
                            "terminal (or set STARLING_PASSWORD)"),
                        opt("exportable", "", "the private key may be exported later", {"private-key-exportable"}),
                        opt("friendly-name", "NAME", "a label for people"),
                        opt("trusted-root", "", "add CA certificates to the store's own trusted roots")})),
      required(command("enable-certificate", "Enable-ExchangeCertificate", G::kCertificates,
                       "enable a certificate for services (SMTP: STARTTLS)", "THUMBPRINT", kThumbprintHelp,
                       join(certificate_identity(),
                            {opt("services", "SERVICES", "SMTP, IMAP, POP, UM, IIS (comma-separated; services only add up)")}))),
      required(command("export-certificate", "Export-ExchangeCertificate", G::kCertificates,
                       "write a certificate (with its key: PKCS#12) or a pending request to a file",
                       "THUMBPRINT", kThumbprintHelp,
                       join(certificate_identity(),
                            {opt("file", "FILE", "where to write (created with mode 0600)", {"file-name"}),
                             opt("password-file", "FILE",
                                 "write a PKCS#12 file with the key, protected by the password read from "
                                 "FILE; '-' asks twice at the terminal (or set STARLING_PASSWORD); without: "
                                 "the certificate chain in PEM"),
                             opt("binary", "", "DER instead of PEM", {"binary-encoded"})}))),
      required(command("remove-certificate", "Remove-ExchangeCertificate", G::kCertificates,
                       "remove a certificate from the store (asks first; --force if a connector uses it)",
                       "THUMBPRINT", kThumbprintHelp, certificate_identity())),
  };
}

std::vector<CliCommand> connector_commands() {
  Options receive = receive_connector_properties();
  Options send = send_connector_properties();
  const std::string receive_id = "the connector: NAME or SERVER\\NAME";
  return {
      command("get-receive-connector", "Get-ReceiveConnector", G::kConnectors, "show the receive connectors",
              "NAME", "show only this connector"),
      properties(command("new-receive-connector", "New-ReceiveConnector", G::kConnectors,
                         "create a receive connector", "NAME", "its name (or --name)", receive)),
      required(properties(command("set-receive-connector", "Set-ReceiveConnector", G::kConnectors,
                                  "change a receive connector's properties", "NAME", receive_id, receive))),
      required(command("remove-receive-connector", "Remove-ReceiveConnector", G::kConnectors,
                       "remove a receive connector (asks first)", "NAME", receive_id)),
      command("get-send-connector", "Get-SendConnector", G::kConnectors, "show the send connectors", "NAME",
              "show only this connector"),
      properties(command("new-send-connector", "New-SendConnector", G::kConnectors, "create a send connector",
                         "NAME", "its name (or --name)", send)),
      required(properties(command("set-send-connector", "Set-SendConnector", G::kConnectors,
                                  "change a send connector's properties", "NAME", "the connector", send))),
      required(command("remove-send-connector", "Remove-SendConnector", G::kConnectors,
                       "remove a send connector (asks first)", "NAME", "the connector")),
      command("get-transport-server", "Get-TransportServer", G::kConnectors,
              "show the delivery settings: retries, expiry, outbound limits, DNS servers", "SERVER",
              "this server's name (there is one)"),
      properties(command("set-transport-server", "Set-TransportServer", G::kConnectors,
                         "change the delivery settings", "SERVER", "this server's name (there is one)",
                         transport_server_properties())),
  };
}

std::vector<CliCommand> domain_commands() {
  Options settings{
      opt("domain-type", "TYPE",
          "Authoritative (every recipient is here), InternalRelay (the others are sent on) or ExternalRelay "
          "(nothing is delivered here)"),
      opt("delivery-target", "TARGET", "where mail for mailboxes at this domain goes: Maildir, lmtp:HOST:PORT, "
                                        "lmtp:[IPv6]:PORT or lmtp:/path/to/socket"),
      opt("make-default", "", "make this the default domain (reports come from postmaster@ it)"),
  };
  Options creating = join({opt("domain-name", "DOMAIN", "the domain (instead of the argument)"),
                           opt("name", "DOMAIN", "the domain (instead of the argument)")},
                          settings);
  return {
      command("get-accepted-domain", "Get-AcceptedDomain", G::kDomains, "show the accepted domains", "DOMAIN",
              "show only this domain"),
      command("new-accepted-domain", "New-AcceptedDomain", G::kDomains, "accept mail for a domain", "DOMAIN",
              "the domain", creating),
      required(command("set-accepted-domain", "Set-AcceptedDomain", G::kDomains,
                       "change an accepted domain's type, delivery target or default", "DOMAIN", "the domain",
                       settings)),
      required(command("remove-accepted-domain", "Remove-AcceptedDomain", G::kDomains,
                       "stop accepting mail for a domain (asks first)", "DOMAIN", "the domain")),
  };
}

std::vector<CliCommand> recipient_commands() {
  const std::string id_help = "the mailbox: its name or any of its addresses";
  const std::string group_help = "the group: its name or any of its addresses";
  Options new_mailbox = join(
      {opt("address", "ADDRESS", "the primary address, at an Authoritative or InternalRelay domain",
           {"primary-smtp-address"}),
       opt("name", "NAME", "a unique name (default: the address)")},
      join(recipient_addresses(false),
           {opt("password-file", "FILE", kPasswordFileHelp), opt("delivery-target", "TARGET", kDeliveryTargetHelp),
            opt("enabled", "BOOL", "false: the mailbox keeps its addresses but receives nothing")}));
  Options set_mailbox =
      join({opt("name", "NAME", "a new name"),
            opt("primary-smtp-address", "ADDRESS", "a new primary address (the old one stays as an alias)")},
           join(recipient_addresses(true),
                {opt("password-file", "FILE", kPasswordFileHelp), opt("delivery-target", "TARGET", kDeliveryTargetHelp),
                 opt("enabled", "BOOL", "false: the mailbox keeps its addresses but receives nothing")}));
  Options new_group = join({opt("address", "ADDRESS", "the primary address", {"primary-smtp-address"}),
                            opt("name", "NAME", "a unique name (default: the address)")},
                           join(recipient_addresses(false),
                                {opt("members", "LIST", "member addresses: recipients here, groups, outside addresses")}));
  Options set_group = join({opt("name", "NAME", "a new name"),
                            opt("primary-smtp-address", "ADDRESS", "a new primary address (the old one stays as an alias)")},
                           join(recipient_addresses(true),
                                {opt("members", "LIST", "the members, replacing the others"),
                                 opt("add-members", "LIST", "members to add"),
                                 opt("remove-members", "LIST", "members to remove")}));
  return {
      command("get-mailbox", "Get-Mailbox", G::kRecipients, "show the mailboxes", "ID", "show only this mailbox"),
      command("new-mailbox", "New-Mailbox", G::kRecipients, "create a mailbox", "NAME", "its name (or --name)",
              new_mailbox),
      required(command("set-mailbox", "Set-Mailbox", G::kRecipients,
                       "change a mailbox: addresses, password, delivery target, enabled", "ID", id_help, set_mailbox)),
      required(command("remove-mailbox", "Remove-Mailbox", G::kRecipients, "remove a mailbox (asks first)", "ID",
                       id_help)),
      command("get-distribution-group", "Get-DistributionGroup", G::kRecipients, "show the distribution groups",
              "ID", "show only this group"),
      command("new-distribution-group", "New-DistributionGroup", G::kRecipients, "create a distribution group",
              "NAME", "its name (or --name)", new_group),
      required(command("set-distribution-group", "Set-DistributionGroup", G::kRecipients,
                       "change a distribution group: addresses, members", "ID", group_help, set_group)),
      required(command("remove-distribution-group", "Remove-DistributionGroup", G::kRecipients,
                       "remove a distribution group (asks first)", "ID", group_help)),
  };
}

std::vector<CliCommand> other_commands() {
  return {
      // Queues (issue 10) go here: one command(...) line each, group G::kQueues.
      command("get-message-tracking-log", "Get-MessageTrackingLog", G::kQueues,
              "show the message tracking log: each message's life, oldest first (docs/tracking.md)", "", "",
              {opt("sender", "ADDRESS", "only messages from this address"),
               opt("recipients", "LIST", "only entries for any of these addresses (comma-separated)"),
               opt("message-id", "ID", "only this Message-ID (with or without < >)"),
               opt("internal-message-id", "ID", "only this queue id"),
               opt("event-id", "EVENT", "only RECEIVE, SEND, DELIVER, DEFER, FAIL, DSN, ... entries"),
               opt("start", "TIME", "from TIME on: 2026-12-01T21:00:00Z, 2026-12-01, 90m, 2h, 3d (ago) or Unix seconds"),
               opt("end", "TIME", "before TIME (not included)"),
               opt("result-size", "N", "show the first N entries (default 1000; unlimited: up to 100000)")}),
      command("get-queue", "Get-Queue", G::kQueues, "show the queues: status, message count, last error, next retry",
              "QUEUE", "only this queue: SERVER\\NAME or NAME (Submission, Unreachable, Poison, a next hop)",
              {opt("filter", "EXPR", "only the queues matching EXPR, e.g. \"Status -eq 'Retry'\" (docs/queues.md)"),
               opt("result-size", "N", "show at most N queues (default 1000; unlimited: all)")}),
      command("get-message", "Get-Message", G::kQueues, "show the queued messages", "MESSAGE",
              "only this message: SERVER\\QUEUE\\N, QUEUE\\N or its InternalMessageId",
              {opt("queue", "QUEUE", "only the messages in this queue"),
               opt("filter", "EXPR", "only the messages matching EXPR, e.g. \"FromAddress -like '*@contoso.com'\""),
               opt("include-recipient-info", "", "also show each recipient with its status and last reply"),
               opt("result-size", "N", "show at most N messages (default 1000; unlimited: all)")}),
      required(command("retry-queue", "Retry-Queue", G::kQueues, "try a queue's next hop now, or route its messages again",
                       "QUEUE", "the queue: SERVER\\NAME or NAME",
                       {opt("resubmit", "", "route every message again (Unreachable drains after a connector is added)")})),
      required(command("suspend-queue", "Suspend-Queue", G::kQueues, "stop delivery from a queue (messages still enter)",
                       "QUEUE", "the queue: SERVER\\NAME or NAME")),
      required(command("resume-queue", "Resume-Queue", G::kQueues, "resume delivery from a suspended queue", "QUEUE",
                       "the queue: SERVER\\NAME or NAME")),
      required(command("suspend-message", "Suspend-Message", G::kQueues, "hold a message until it is resumed", "MESSAGE",
                       "the message: SERVER\\QUEUE\\N, QUEUE\\N or its InternalMessageId")),
      required(command("resume-message", "Resume-Message", G::kQueues,
                       "resume a suspended message, or take one out of Poison", "MESSAGE",
                       "the message: SERVER\\QUEUE\\N, QUEUE\\N or its InternalMessageId")),
      required(command("remove-message", "Remove-Message", G::kQueues,
                       "remove a message from the queues (asks first; the sender gets a report)", "MESSAGE",
                       "the message: SERVER\\QUEUE\\N, QUEUE\\N or its InternalMessageId",
                       {opt("with-ndr", "BOOL", "send the sender a non-delivery report (default true)")})),
      required(command("export-message", "Export-Message", G::kQueues,
                       "write a queued message to an .eml file, as it was received", "MESSAGE",
                       "the message: SERVER\\QUEUE\\N, QUEUE\\N or its InternalMessageId",
                       {opt("file", "FILE", "where to write (created with mode 0600; --force replaces a file)",
                            {"file-name"})})),
      command("get-role-assignment", "Get-ManagementRoleAssignment", G::kRoles,
              "show who holds which management role", "", "", role_options("only this role")),
      command("new-role-assignment", "New-ManagementRoleAssignment", G::kRoles,
              "give a Unix user or group a management role", "", "", role_options("the role")),
      command("remove-role-assignment", "Remove-ManagementRoleAssignment", G::kRoles,
              "take a management role back (asks first)", "", "", role_options("the role")),
      command("get-event", "Get-EventLog", G::kEvents, "show the event log, or the events matching a filter", "", "",
              {opt("id", "N", "only this event id, e.g. 12014"),
               opt("level", "LEVEL", "only Information, Warning or Error"),
               opt("category", "CATEGORY", "only this category, e.g. Certificates or Management"),
               opt("since", "TIME", "only since TIME: 2026-11-25T17:00:00Z, 2026-11-25, 90m, 2h, 3d (ago) or Unix seconds"),
               opt("newest", "N", "only the N newest events")}),
      command("test-starttls", "Test-StartTls", G::kDiagnostics,
              "check every TLS connector's certificate; exit 0 only if all are healthy", "CONNECTOR",
              "check only this connector",
              {opt("connector", "CONNECTOR", "check only this connector (instead of the argument)"),
               opt("probe", "", "also connect to each binding and compare the certificate served")}),
  };
}

CliCommand setup_command() {
  CliCommand c = command(
      "setup", "", G::kSetup, "create a new server's data directory (--data-dir, default /var/lib/starling)", "", "",
      {opt("server-name", "NAME", "the server's name (default: the short host name)"),
       opt("fqdn", "FQDN", "the server's FQDN (default: the host's FQDN)"),
       opt("listen", "IP:PORT", "an address of the default receive connector (repeatable; default 0.0.0.0:25)"),
       opt("accepted-domain", "DOMAIN",
           "a domain delivered here (repeatable; the first is the default; default: the FQDN without its "
           "first label)"),
       opt("submission-listen", "IP:PORT",
           "the address of the client connector 'Client SERVER' (default 0.0.0.0:587; none: no client connector)"),
       opt("mailbox", "ADDRESS", "also create this mailbox (repeatable; at an accepted domain)"),
       opt("admin-group", "GROUP", "the Unix group of local administrators (default starling-admins)"),
       opt("user", "USER", "the unprivileged user starlingd runs as (default starling; created if missing)"),
       opt("mode", "MODE", "hub (default) or edge"),
       opt("ecdsa", "", "also create an ECDSA P-256 self-signed certificate beside the RSA one, for the same names")});
  c.local = true;
  return c;
}

std::vector<CliCommand> build_catalog() {
  std::vector<CliCommand> all;
  for (auto part : {certificate_commands(), connector_commands(), domain_commands(), recipient_commands(),
                    other_commands(), std::vector<CliCommand>{setup_command()}}) {
    for (auto& c : part) all.push_back(std::move(c));
  }
  return all;
}

bool option_named(const CliOption& o, std::string_view key) {
  if (mgmt::option_key(o.name) == key) return true;
  for (const auto& a : o.aliases) {
    if (mgmt::option_key(a) == key) return true;
  }
  return false;
}

}  // namespace

std::string_view group_title(CommandGroup g) {
  switch (g) {
    case G::kCertificates: return "Certificates";
    case G::kConnectors: return "Connectors and transport";
    case G::kDomains: return "Accepted domains";
    case G::kRecipients: return "Recipients";
    case G::kQueues: return "Queues";
    case G::kRoles: return "Roles";
    case G::kEvents: return "Events";
    case G::kDiagnostics: return "Diagnostics";
    case G::kSetup: return "Setup";
  }
  return "";
}

const std::vector<CliCommand>& cli_commands() {
  static const std::vector<CliCommand> kCatalog = build_catalog();
  return kCatalog;
}

const CliCommand* find_cli_command(std::string_view name) {
  for (const auto& c : cli_commands()) {
    if (core::iequals(c.name, name) || (!c.alias.empty() && core::iequals(c.alias, name))) return &c;
  }
  return nullptr;
}

const std::vector<CliOption>& global_options() {
  static const std::vector<CliOption> kGlobal{
      opt("data-dir", "DIR",
          "the server's data directory (default: $STARLING_DATA_DIR, else /var/lib/starling)"),
      opt("format", "FORMAT",
          "table (default: the command's usual columns), list (Property : value, like Format-List) or json "
          "(an array of objects, numbers as numbers)"),
      opt("property", "NAMES", "show these properties (comma-separated, repeatable; '*': all)"),
      opt("offline", "", "local administrators: run the command on the store directly, without starlingd"),
      opt("yes", "", "answer yes to a confirmation (without a terminal, a command that asks fails otherwise)"),
      opt("force", "", "remove a certificate in use; make a new SMTP certificate the default; replace the file export-message writes"),
      opt("help", "", "show this help, or the command's", {"h"}),
      opt("version", "", "print the version"),
      // -Confirm:$false, as PowerShell writes --yes; not shown in help.
      opt("confirm", "BOOL", ""),
  };
  return kGlobal;
}

const CliOption* find_cli_option(const CliCommand* command, std::string_view name) {
  std::string key = mgmt::option_key(name);
  if (command) {
    for (const auto& o : command->options) {
      if (option_named(o, key)) return &o;
    }
  }
  for (const auto& o : global_options()) {
    if (option_named(o, key)) return &o;
  }
  return nullptr;
}

bool is_secret_option(std::string_view key) {
  return key == "password" || key == "authenticationcredential";
}

}  // namespace starling::app
