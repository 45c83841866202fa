// The management commands run in-process against a real store: authorization, validation
// (refusals change nothing), confirmations, and the certificate life cycle.
#include <gtest/gtest.h>

#include <filesystem>

#include "events/event_log.hpp"
#include "mgmt/request.hpp"
#include "mgmt/commands.hpp"
#include "mgmt/values.hpp"
#include "store/store.hpp"
#include "tls/certificate_io.hpp"

namespace starling::mgmt {
namespace {

class Mgmt : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/starling-mgmt-XXXXXX";
    dir_ = mkdtemp(tmpl);
    store_ = std::move(*store::Store::create(dir_ / "starling.db"));
    settings_ = {"mx", "mail.contoso.test"};
    ASSERT_TRUE(store_->set_server_settings(settings_));
    core::ReceiveConnector c;
    c.name = "Default mx";
    c.bindings = {{"0.0.0.0", 25}};
    ASSERT_TRUE(store_->add_receive_connector(c));
    ASSERT_TRUE(store_->add_accepted_domain("contoso.test"));
    auto made = tls::generate_self_signed({"mx", {"mx", "mail.contoso.test"}});
    auto props = tls::describe_certificate(made->certificate_pem, made->key_pem);
    setup_thumbprint_ = props->thumbprint;
    store::StoredCertificate sc{setup_thumbprint_, made->certificate_pem, made->key_pem, "",
                                static_cast<core::Services>(core::Service::kSmtp), "Starling"};
    ASSERT_TRUE(store_->add_certificate(sc));
    ASSERT_TRUE(store_->set_setting("default_smtp_certificate", setup_thumbprint_));
    root_.user = "root";
    root_.local_admin = true;
    log_ = std::make_unique<events::EventLog>(store_.get());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Reply run(const Caller& who, std::string command, Json args = Json::object(), bool yes = false,
            bool force = false, bool interactive = false) {
    Context ctx{*store_, settings_, who, log_.get()};
    Request r;
    r.command = std::move(command);
    r.args = std::move(args);
    r.yes = yes;
    r.force = force;
    r.interactive = interactive;
    return execute(ctx, r);
  }
  Reply run(std::string command, Json args = Json::object(), bool yes = false, bool force = false,
            bool interactive = false) {
    return run(root_, std::move(command), std::move(args), yes, force, interactive);
  }
  Caller user(std::string name, std::vector<std::string> groups = {}) {
    Caller c;
    c.uid = 1000;
    c.user = std::move(name);
    c.groups = std::move(groups);
    return c;
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  core::ServerSettings settings_;
  Caller root_;
  std::unique_ptr<events::EventLog> log_;
  std::string setup_thumbprint_;
};

TEST_F(Mgmt, ExchangeAliasesAndIdentity) {
  EXPECT_EQ(canonical_command("Get-ExchangeCertificate"), "get-certificate");
  EXPECT_EQ(canonical_command("enable-exchangecertificate"), "enable-certificate");
  EXPECT_EQ(canonical_command("Get-ReceiveConnector"), "get-receive-connector");
  auto r = run("get-receive-connector");
  ASSERT_EQ(r.exit_code, 0) << r.error;
  ASSERT_EQ(r.objects.size(), 1u);
  EXPECT_EQ(r.objects[0]["Identity"], "mx\\Default mx");
  EXPECT_EQ(r.objects[0]["ObjectClass"], "msExchSmtpReceiveConnector");
  EXPECT_EQ(r.objects[0]["AuthMechanism"], "Tls");
}

TEST_F(Mgmt, SetReceiveConnectorChangesOnlyValidValues) {
  auto ok = run("set-receive-connector", {{"identity", "mx\\Default mx"}, {"fqdn", "relay.contoso.test"},
                                          {"maxmessagesize", "20MB"}, {"connectioninactivitytimeout", "00:02:00"}});
  ASSERT_EQ(ok.exit_code, 0) << ok.error;
  auto c = (*store_->receive_connectors())[0];
  EXPECT_EQ(c.fqdn, "relay.contoso.test");
  EXPECT_EQ(c.max_message_size, 20u * 1024 * 1024);
  EXPECT_EQ(c.connection_inactivity_timeout.count(), 120);

  int64_t g = *store_->generation();
  struct Bad {
    Json args;
    const char* says;
  };
  for (const Bad& b : std::vector<Bad>{
           {{{"banner", "hello"}}, "Banner: must start with 220"},
           {{{"authmechanism", "None"}, {"requiretls", "true"}}, "RequireTLS: needs Tls"},
           {{{"authmechanism", "Tls, BasicAuthRequireTLS"}}, "BasicAuthRequireTLS needs both"},
           {{{"authmechanism", "None, Tls"}}, "None stands alone"},
           {{{"remoteipranges", "10.0.0.0/33"}}, "prefix must be 0-32"},
           {{{"maxmessagesize", "lots"}}, "is not a size"},
           {{{"colour", "blue"}}, "unknown property 'colour'"},
           {{{"fqdn", "bad_name"}}, "not a valid DNS name"},
       }) {
    Json args = b.args;
    args["identity"] = "Default mx";
    auto r = run("set-receive-connector", args);
    EXPECT_NE(r.exit_code, 0) << args.dump();
    EXPECT_NE(r.error.find(b.says), std::string::npos) << r.error;
  }
  EXPECT_EQ(*store_->generation(), g) << "a refused command changed the store";
}

TEST_F(Mgmt, BindingSharedWithSameRangesIsRefused) {
  auto r = run("new-receive-connector", {{"name", "Second"}, {"bindings", "0.0.0.0:25"}});
  ASSERT_EQ(r.exit_code, 1);
  EXPECT_NE(r.error.find("already used by receive connector 'Default mx'"), std::string::npos) << r.error;
  auto ok = run("new-receive-connector", {{"name", "Partners"}, {"bindings", "0.0.0.0:25"},
                                          {"remoteipranges", "192.0.2.0/24"}});
  EXPECT_EQ(ok.exit_code, 0) << ok.error;
  EXPECT_EQ(store_->receive_connectors()->size(), 2u);
}

TEST_F(Mgmt, SendConnectorValidation) {
  auto r = run("new-send-connector", {{"name", "Out"}, {"addressspaces", "*.contoso.test;5,smtp:fabrikam.test"},
                                      {"smarthosts", "relay.contoso.test"}});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(r.objects[0]["DNSRoutingEnabled"], false);
  EXPECT_EQ(run("new-send-connector", {{"name", "X"}, {"addressspaces", "*;500"}}).exit_code, 1);
  EXPECT_EQ(run("new-send-connector", {{"name", "X"}, {"tlsauthlevel", "DomainValidation"}}).exit_code, 1);
  EXPECT_EQ(run("set-send-connector", {{"identity", "Out"}, {"port", "70000"}}).exit_code, kExitUsage);
}

TEST_F(Mgmt, RolesDecideWhoMayDoWhat) {
  Caller nobody = user("nobody");
  Caller viewer = user("alice");
  Caller admin = user("bob", {"mailops"});
  ASSERT_TRUE(store_->add_role_assignment({"ViewOnlyAdministrator", "User", "alice"}));
  ASSERT_TRUE(store_->add_role_assignment({"ServerAdministrator", "Group", "mailops"}));

  auto denied = run(nobody, "get-certificate");
  EXPECT_EQ(denied.exit_code, kExitDenied);
  EXPECT_NE(denied.error.find("needs the ViewOnlyAdministrator role"), std::string::npos);
  EXPECT_EQ(run(viewer, "get-certificate").exit_code, 0);
  auto refused = run(viewer, "new-accepted-domain", {{"identity", "fabrikam.test"}});
  EXPECT_EQ(refused.exit_code, kExitDenied);
  EXPECT_NE(refused.error.find("ServerAdministrator"), std::string::npos);
  EXPECT_EQ(store_->accepted_domains()->size(), 1u);
  EXPECT_EQ(run(admin, "new-accepted-domain", {{"identity", "fabrikam.test"}}).exit_code, 0);
  EXPECT_EQ(run(admin, "new-role-assignment", {{"role", "ServerAdministrator"}, {"user", "alice"}}).exit_code,
            kExitDenied);

  settings_.mode = "edge";
  EXPECT_EQ(run(admin, "get-certificate").exit_code, kExitDenied);
  EXPECT_EQ(run(root_, "get-certificate").exit_code, 0);

  auto events = store_->events({.event_id = 13002});
  ASSERT_TRUE(events);
  EXPECT_GE(events->size(), 3u) << "refusals are recorded";
  EXPECT_EQ(store_->events({.event_id = 13001})->size(), 1u) << "the change is recorded";
}

TEST_F(Mgmt, ConfirmationsNeverWaitWithoutATerminal) {
  auto r = run("remove-accepted-domain", {{"identity", "contoso.test"}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.error.find("--yes"), std::string::npos);
  auto ask = run("remove-accepted-domain", {{"identity", "contoso.test"}}, false, false, true);
  EXPECT_EQ(ask.exit_code, 0);
  EXPECT_FALSE(ask.confirm.empty());
  EXPECT_EQ(store_->accepted_domains()->size(), 1u);
  EXPECT_EQ(run("remove-accepted-domain", {{"identity", "contoso.test"}}, true).exit_code, 0);
  EXPECT_TRUE(store_->accepted_domains()->empty());
}

TEST_F(Mgmt, CertificateLifeCycle) {
  auto made = run("new-certificate", {{"domain", Json::array({"mail.fabrikam.test", "smtp.fabrikam.test"})},
                                      {"exportable", "true"}});
  ASSERT_EQ(made.exit_code, 0) << made.error;
  std::string thumb = made.objects[0]["Thumbprint"];
  EXPECT_EQ(made.objects[0]["Subject"], "CN=mail.fabrikam.test");
  EXPECT_EQ(made.objects[0]["Services"], "SMTP");

  EXPECT_EQ(run("enable-certificate", {{"identity", thumb}, {"services", "IMAP"}}).exit_code, 0);
  auto got = run("get-certificate", {{"identity", thumb}});
  EXPECT_EQ(got.objects[0]["Services"], "IMAP, SMTP") << "services accumulate";

  // The setup certificate serves the connector: removing it needs --force.
  auto in_use = run("remove-certificate", {{"identity", setup_thumbprint_}}, true);
  EXPECT_EQ(in_use.exit_code, 1);
  EXPECT_NE(in_use.error.find("in use by receive connector 'Default mx'"), std::string::npos) << in_use.error;

  // Export with the key only when exportable.
  auto p12 = run("export-certificate", {{"identity", thumb}, {"password", "s3cret"}});
  ASSERT_EQ(p12.exit_code, 0) << p12.error;
  EXPECT_FALSE(p12.file_base64.empty());
  auto refused = run("export-certificate", {{"identity", setup_thumbprint_}, {"password", "x"}});
  EXPECT_NE(refused.error.find("not exportable"), std::string::npos);

  // Import into the same store: a duplicate. Remove it, then import: services start at None.
  EXPECT_NE(run("import-certificate", {{"filecontent", p12.file_base64}, {"password", "s3cret"}}).exit_code, 0);
  EXPECT_EQ(run("remove-certificate", {{"identity", thumb}}, true).exit_code, 0);
  auto wrong = run("import-certificate", {{"filecontent", p12.file_base64}, {"password", "wrong"}});
  EXPECT_EQ(wrong.exit_code, 1);
  auto imported = run("import-certificate", {{"filecontent", p12.file_base64}, {"password", "s3cret"}});
  ASSERT_EQ(imported.exit_code, 0) << imported.error;
  EXPECT_EQ(imported.objects[0]["Services"], "None");
  EXPECT_EQ(imported.objects[0]["HasPrivateKey"], true);
}

TEST_F(Mgmt, DefaultSmtpCertificateNeedsForceWithoutATerminal) {
  auto kept = run("new-certificate", {{"domain", "mail.contoso.test"}});
  ASSERT_EQ(kept.exit_code, 0) << kept.error;
  EXPECT_EQ(store_->setting("default_smtp_certificate")->value_or(""), setup_thumbprint_);
  bool said = false;
  for (const auto& m : kept.messages) said = said || m.find("stays") != std::string::npos;
  EXPECT_TRUE(said);
  auto replaced = run("new-certificate", {{"domain", "mail.contoso.test"}}, false, true);
  EXPECT_EQ(store_->setting("default_smtp_certificate")->value_or(""), std::string(replaced.objects[0]["Thumbprint"]));
}

TEST_F(Mgmt, RequestIsKeptAsPendingRequest) {
  auto r = run("new-certificate", {{"request", "req.csr"}, {"domain", "mail.contoso.test"}});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_NE(from_base64(r.file_base64)->find("BEGIN CERTIFICATE REQUEST"), std::string::npos);
  auto all = run("get-certificate");
  bool pending = false;
  for (const auto& o : all.objects) {
    if (o["Status"] == "PendingRequest") {
      pending = true;
      EXPECT_EQ(o["Subject"], "CN=mail.contoso.test");
    }
  }
  EXPECT_TRUE(pending);
  EXPECT_EQ(run("new-certificate", {{"request", "x"}, {"services", "SMTP"}}).exit_code, kExitUsage);
}

TEST_F(Mgmt, GetEventFilters) {
  run("new-accepted-domain", {{"identity", "a.test"}});
  run("new-accepted-domain", {{"identity", "b.test"}});
  auto r = run("get-event", {{"id", "13001"}, {"newest", "1"}});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  ASSERT_EQ(r.objects.size(), 1u);
  EXPECT_NE(std::string(r.objects[0]["Message"]).find("b.test"), std::string::npos);
  EXPECT_EQ(r.objects[0]["User"], "root");
  EXPECT_EQ(run("get-event", {{"level", "loud"}}).exit_code, kExitUsage);
}

TEST_F(Mgmt, TestStartTlsNamesTheConditionAndTheFix) {
  auto healthy = run("test-starttls");
  EXPECT_EQ(healthy.exit_code, 0) << healthy.error;
  ASSERT_EQ(healthy.objects.size(), 1u);
  EXPECT_EQ(healthy.objects[0]["Thumbprint"], setup_thumbprint_);

  ASSERT_EQ(run("set-receive-connector", {{"identity", "Default mx"}, {"fqdn", "mail.fabrikam.test"}}).exit_code, 0);
  auto a = run("test-starttls");
  EXPECT_EQ(a.exit_code, 1);
  EXPECT_EQ(a.objects[0]["Healthy"], false);
  EXPECT_EQ(std::string(a.objects[0]["Condition"]).substr(0, 3), "(a)");
  EXPECT_EQ(a.objects[0]["Fix"], "starling new-certificate --domain mail.fabrikam.test --services SMTP");

  auto made = run("new-certificate", {{"domain", "mail.fabrikam.test"}, {"services", "IMAP"}});
  std::string thumb = made.objects[0]["Thumbprint"];
  auto b = run("test-starttls", {{"connector", "Default mx"}});
  EXPECT_EQ(std::string(b.objects[0]["Condition"]).substr(0, 3), "(b)");
  EXPECT_EQ(b.objects[0]["Fix"], "starling enable-certificate " + thumb + " --services SMTP");

  ASSERT_EQ(run("enable-certificate", {{"identity", thumb}, {"services", "SMTP"}}).exit_code, 0);
  auto fixed = run("test-starttls");
  EXPECT_EQ(fixed.exit_code, 0);
  EXPECT_EQ(fixed.objects[0]["Thumbprint"], thumb);
  EXPECT_EQ(run("test-starttls", {{"connector", "nope"}}).exit_code, 1);
}

// --- transport server ---------------------------------------------------------------------------

TEST_F(Mgmt, GetTransportServerShowsTheDefaults) {
  EXPECT_EQ(canonical_command("Get-TransportServer"), "get-transport-server");
  EXPECT_EQ(canonical_command("set-transportserver"), "set-transport-server");
  auto r = run("get-transport-server");
  ASSERT_EQ(r.exit_code, 0) << r.error;
  ASSERT_EQ(r.objects.size(), 1u);
  const Json& o = r.objects[0];
  EXPECT_EQ(o["Identity"], "mx");
  EXPECT_EQ(o["TransientFailureRetryCount"], 6);
  EXPECT_EQ(o["TransientFailureRetryInterval"], "00:05:00");
  EXPECT_EQ(o["OutboundConnectionFailureRetryInterval"], "00:10:00");
  EXPECT_EQ(o["MessageRetryInterval"], "00:05:00");
  EXPECT_EQ(o["MessageExpirationTimeout"], "2.00:00:00");
  EXPECT_EQ(o["DelayNotificationTimeout"], "04:00:00");
  EXPECT_EQ(o["MaxOutboundConnections"], 1000);
  EXPECT_EQ(o["MaxPerDomainOutboundConnections"], 20);
  EXPECT_EQ(o["ExternalDNSServers"], Json::array());
  EXPECT_EQ(o["ExternalPostmasterAddress"], "");
  EXPECT_EQ(o["MessageTrackingLogMaxAge"], "30.00:00:00");
  EXPECT_EQ(o["PoisonThreshold"], 2);
  EXPECT_EQ(o["EventLogMaxAge"], "30.00:00:00");
  EXPECT_EQ(o["EventLogMaxCount"], 100000);
  EXPECT_EQ(o["MessageTrackingLogEnabled"], true);
  EXPECT_EQ(o["MetricsListen"], "");
  EXPECT_EQ(o.size(), 19u) << o.dump();
  EXPECT_EQ(r.default_properties.front(), "Identity");
  EXPECT_EQ(run("get-transport-server", {{"identity", "mx"}}).exit_code, 0);
  EXPECT_EQ(run("get-transport-server", {{"identity", "other"}}).exit_code, kExitFailed);
  EXPECT_EQ(run("get-transport-server", {{"colour", "blue"}}).exit_code, kExitUsage);
}

TEST_F(Mgmt, SetTransportServerStoresRecordsAndReconfigures) {
  int64_t g = *store_->generation();
  size_t changes = store_->events({.event_id = 13001})->size();
  auto r = run("set-transport-server", {{"externaldnsservers", "127.0.0.1:5353, [::1]:53"},
                                        {"messageexpirationtimeout", "3.00:00:00"},
                                        {"transientfailureretryinterval", "00:01:00"},
                                        {"messageretryinterval", "120"},
                                        {"maxperdomainoutboundconnections", "10"},
                                        {"externalpostmasteraddress", "postmaster@x.test"},
                                        {"messagetrackinglogmaxdirectorysize", "500MB"}});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_FALSE(r.change.empty());
  EXPECT_TRUE(r.reconfigures) << "the daemon re-reads the store and applies the change";
  EXPECT_EQ(*store_->generation(), g + 1);
  auto t = *store_->transport_settings();
  EXPECT_EQ(t.external_dns_servers, (std::vector<std::string>{"127.0.0.1:5353", "[::1]:53"}));
  EXPECT_EQ(t.message_expiration_timeout, std::chrono::seconds(3 * 86400));
  EXPECT_EQ(t.transient_failure_retry_interval, std::chrono::seconds(60));
  EXPECT_EQ(t.message_retry_interval, std::chrono::seconds(120)) << "seconds are accepted";
  EXPECT_EQ(t.max_per_domain_outbound_connections, 10u);
  EXPECT_EQ(t.external_postmaster_address, "postmaster@x.test");
  EXPECT_EQ(t.message_tracking_log_max_directory_size, 500ull << 20);
  EXPECT_EQ(t.transient_failure_retry_count, 6u) << "settings not named keep their value";
  auto events = *store_->events({.event_id = 13001});
  ASSERT_EQ(events.size(), changes + 1);
  EXPECT_NE(events.back().data_json.find("MessageExpirationTimeout=3.00:00:00"), std::string::npos)
      << events.back().data_json;

  auto shown = run("get-transport-server", {{"identity", "mx"}});
  EXPECT_EQ(shown.objects[0]["MessageExpirationTimeout"], "3.00:00:00");
  EXPECT_EQ(shown.objects[0]["MessageRetryInterval"], "00:02:00");

  // An empty value clears a list; so does PowerShell's $null.
  ASSERT_EQ(run("set-transport-server", {{"externaldnsservers", ""}}).exit_code, 0);
  EXPECT_TRUE(store_->transport_settings()->external_dns_servers.empty());
  ASSERT_EQ(run("set-transport-server", {{"externaldnsservers", "192.0.2.53"}}).exit_code, 0);
  ASSERT_EQ(run("set-transport-server", {{"externaldnsservers", "$null"}}).exit_code, 0);
  EXPECT_TRUE(store_->transport_settings()->external_dns_servers.empty());

  // The same value again changes nothing and records nothing.
  int64_t g2 = *store_->generation();
  auto same = run("set-transport-server", {{"maxperdomainoutboundconnections", "10"}});
  EXPECT_EQ(same.exit_code, 0) << same.error;
  EXPECT_TRUE(same.change.empty());
  EXPECT_EQ(*store_->generation(), g2);
  EXPECT_EQ(run("set-transport-server").exit_code, kExitUsage) << "nothing to change";
}

TEST_F(Mgmt, SetTransportServerRefusalsChangeNothing) {
  int64_t g = *store_->generation();
  struct Bad {
    Json args;
    int exit_code;
    const char* says;
  };
  for (const Bad& b : std::vector<Bad>{
           {{{"transientfailureretryinterval", "00:00:00"}}, kExitFailed, "TransientFailureRetryInterval: must be greater"},
           {{{"messageretryinterval", "0"}}, kExitFailed, "MessageRetryInterval: must be greater"},
           {{{"outboundconnectionfailureretryinterval", "0"}}, kExitFailed, "OutboundConnectionFailureRetryInterval"},
           {{{"maxperdomainoutboundconnections", "2000"}}, kExitFailed, "above MaxOutboundConnections"},
           {{{"maxoutboundconnections", "10"}}, kExitFailed, "MaxPerDomainOutboundConnections: 20 is above"},
           {{{"maxoutboundconnections", "99999999999"}}, kExitUsage, "MaxOutboundConnections"},
           {{{"externaldnsservers", "127.0.0.1:5353,dns.example"}}, kExitFailed, "ExternalDNSServers: 'dns.example'"},
           {{{"externaldnsservers", "127.0.0.1:99999"}}, kExitFailed, "ExternalDNSServers"},
           {{{"messageexpirationtimeout", "2 days"}}, kExitUsage, "MessageExpirationTimeout: '2 days' is not a duration"},
           {{{"delaynotificationtimeout", "00:61:00"}}, kExitUsage, "DelayNotificationTimeout"},
           {{{"externalpostmasteraddress", "postmaster"}}, kExitFailed, "ExternalPostmasterAddress"},
           {{{"transientfailureretrycount", "16"}}, kExitFailed, "TransientFailureRetryCount"},
           {{{"transientfailureretrycount", "many"}}, kExitUsage, "TransientFailureRetryCount"},
           {{{"poisonthreshold", "0"}}, kExitFailed, "PoisonThreshold"},
           {{{"retries", "3"}}, kExitUsage, "unknown property 'retries'"},
           {{{"identity", "other"}, {"poisonthreshold", "3"}}, kExitFailed, "no transport server named 'other'"},
       }) {
    auto r = run("set-transport-server", b.args);
    EXPECT_EQ(r.exit_code, b.exit_code) << b.args.dump() << ": " << r.error;
    EXPECT_NE(r.error.find(b.says), std::string::npos) << r.error;
    EXPECT_TRUE(r.change.empty());
  }
  EXPECT_EQ(*store_->generation(), g) << "a refused command changed the store";
  EXPECT_FALSE(*store_->setting("transport_server")) << "nothing was written";
}

TEST_F(Mgmt, TransportServerRoles) {
  ASSERT_TRUE(store_->add_role_assignment({"ViewOnlyAdministrator", "User", "alice"}));
  ASSERT_TRUE(store_->add_role_assignment({"ServerAdministrator", "User", "bob"}));
  int64_t g = *store_->generation();
  EXPECT_EQ(run(user("alice"), "get-transport-server").exit_code, 0);
  auto denied = run(user("alice"), "set-transport-server", {{"poisonthreshold", "3"}});
  EXPECT_EQ(denied.exit_code, kExitDenied);
  EXPECT_NE(denied.error.find("needs the ServerAdministrator role"), std::string::npos) << denied.error;
  EXPECT_EQ(run(user("nobody"), "get-transport-server").exit_code, kExitDenied);
  EXPECT_EQ(*store_->generation(), g);
  EXPECT_EQ(run(user("bob"), "set-transport-server", {{"poisonthreshold", "3"}}).exit_code, 0);
  EXPECT_EQ(store_->transport_settings()->poison_threshold, 3u);
}

// --- send connector authentication and limits ---------------------------------------------------

TEST_F(Mgmt, SendConnectorCredentialIsStoredButNeverShown) {
  const std::string password = "S3cret-Pa55-xyzzy";
  auto made = run("new-send-connector", {{"name", "Relay"},
                                         {"smarthosts", "relay.contoso.test:587"},
                                         {"smarthostauthmechanism", "basicauthrequiretls"},
                                         {"smtpmaxmessagesperconnection", "50"},
                                         {std::string(kCredentialUserKey), "relay-user"},
                                         {std::string(kCredentialPasswordKey), password}});
  ASSERT_EQ(made.exit_code, 0) << made.error;
  auto stored = (*store_->send_connectors())[0];
  EXPECT_EQ(stored.smart_host_auth_mechanism, "BasicAuthRequireTLS") << "spelled the canonical way";
  EXPECT_EQ(stored.authentication_user, "relay-user");
  EXPECT_EQ(stored.authentication_password, password) << "the store keeps it for delivery";
  EXPECT_EQ(stored.smtp_max_messages_per_connection, 50u);
  EXPECT_FALSE(stored.dns_routing_enabled);

  auto set = run("set-send-connector", {{"identity", "Relay"},
                                        {"useexternaldnsserversenabled", "true"},
                                        {std::string(kCredentialUserKey), "relay-user2"},
                                        {std::string(kCredentialPasswordKey), password + "2"}});
  ASSERT_EQ(set.exit_code, 0) << set.error;
  EXPECT_EQ(set.warnings.size(), 1u) << "no ExternalDNSServers on the transport server";
  EXPECT_TRUE((*store_->send_connectors())[0].use_external_dns_servers_enabled);

  auto shown = run("get-send-connector", {{"identity", "Relay"}});
  ASSERT_EQ(shown.exit_code, 0) << shown.error;
  EXPECT_EQ(shown.objects[0]["AuthenticationCredential"], "relay-user2") << "the user name only";
  EXPECT_EQ(shown.objects[0]["SmartHostAuthMechanism"], "BasicAuthRequireTLS");
  EXPECT_EQ(shown.objects[0]["UseExternalDNSServersEnabled"], true);
  EXPECT_EQ(shown.objects[0]["SmtpMaxMessagesPerConnection"], 50);
  for (const Reply* r : {&made, &set, &shown}) {
    EXPECT_EQ(r->objects.dump().find(password), std::string::npos) << r->objects.dump();
    for (const auto& m : r->messages) EXPECT_EQ(m.find(password), std::string::npos) << m;
  }
  auto events = store_->events({});
  ASSERT_TRUE(events);
  size_t changes = 0;
  for (const auto& e : *events) {
    EXPECT_EQ(e.message.find(password), std::string::npos) << e.message;
    EXPECT_EQ(e.data_json.find(password), std::string::npos) << e.data_json;
    changes += e.event_id == 13001;
  }
  EXPECT_GE(changes, 2u);
  auto listed = run("get-event", {{"id", "13001"}});
  EXPECT_EQ(listed.objects.dump().find(password), std::string::npos);
}

TEST_F(Mgmt, SendConnectorCredentialOnTheCommandLineIsRefused) {
  int64_t g = *store_->generation();
  auto r = run("new-send-connector", {{"name", "Relay"}, {"smarthosts", "relay.contoso.test"},
                                      {"authenticationcredential", "user:hunter2"}});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_NE(r.error.find("--authentication-credential-file"), std::string::npos) << r.error;
  EXPECT_EQ(r.error.find("hunter2"), std::string::npos);
  EXPECT_TRUE(store_->send_connectors()->empty());
  ASSERT_EQ(run("new-send-connector", {{"name", "Relay"}, {"smarthosts", "relay.contoso.test"}}).exit_code, 0);
  g = *store_->generation();
  auto s = run("set-send-connector", {{"identity", "Relay"}, {"authenticationcredential", "hunter2"}});
  EXPECT_EQ(s.exit_code, kExitUsage);
  EXPECT_NE(s.error.find("--authentication-credential-file"), std::string::npos) << s.error;
  EXPECT_EQ(*store_->generation(), g);
  auto events = store_->events({});  // a named Result: a range-for over *temporary would dangle
  ASSERT_TRUE(events);
  for (const auto& e : *events) EXPECT_EQ(e.data_json.find("hunter2"), std::string::npos);
}

TEST_F(Mgmt, SendConnectorAuthenticationAndLimitsAreValidated) {
  ASSERT_EQ(run("new-send-connector", {{"name", "Relay"}, {"smarthosts", "[192.0.2.7]:2525"}}).exit_code, 0)
      << "a smart host with a port";
  ASSERT_EQ(run("new-send-connector", {{"name", "Internet"}}).exit_code, 0);
  int64_t g = *store_->generation();
  const std::string user(kCredentialUserKey), password(kCredentialPasswordKey);
  struct Bad {
    Json args;
    const char* says;
  };
  for (const Bad& b : std::vector<Bad>{
           {{{"identity", "Relay"}, {"smarthostauthmechanism", "Kerberos"}}, "SmartHostAuthMechanism: 'Kerberos'"},
           {{{"identity", "Relay"}, {"smarthostauthmechanism", "BasicAuth"}}, "needs an AuthenticationCredential"},
           {{{"identity", "Relay"}, {"smarthostauthmechanism", "BasicAuthRequireTLS"}}, "needs an AuthenticationCredential"},
           {{{"identity", "Internet"}, {"smarthostauthmechanism", "BasicAuth"}, {user, "u"}, {password, "p"}},
            "is for smart hosts"},
           {{{"identity", "Relay"}, {"smarthostauthmechanism", "BasicAuthRequireTLS"}, {"ignorestarttls", "true"},
             {user, "u"}, {password, "p"}},
            "IgnoreSTARTTLS must be false"},
           {{{"identity", "Relay"}, {user, "u"}, {password, ""}}, "give both the user name and the password"},
           {{{"identity", "Relay"}, {password, "p"}}, "give both"},
           {{{"identity", "Relay"}, {"smtpmaxmessagesperconnection", "0"}}, "SmtpMaxMessagesPerConnection: must be 1-1000"},
           {{{"identity", "Relay"}, {"smtpmaxmessagesperconnection", "1001"}}, "SmtpMaxMessagesPerConnection"},
           {{{"identity", "Relay"}, {"smtpmaxmessagesperconnection", "4294967297"}}, "SmtpMaxMessagesPerConnection"},
           {{{"identity", "Relay"}, {"useexternaldnsserversenabled", "maybe"}}, "UseExternalDNSServersEnabled"},
           {{{"identity", "Relay"}, {"smarthosts", "relay.contoso.test:99999"}}, "SmartHosts:"},
           {{{"identity", "Relay"}, {"smarthosts", "[192.0.2.7"}}, "SmartHosts:"},
           {{{"identity", "Internet"}, {"addressspaces", "*;500"}}, "AddressSpaces:"},
           {{{"identity", "Internet"}, {"name", "Relay"}}, "a send connector named 'Relay' exists"},
       }) {
    auto r = run("set-send-connector", b.args);
    EXPECT_NE(r.exit_code, 0) << b.args.dump();
    EXPECT_NE(r.error.find(b.says), std::string::npos) << b.args.dump() << ": " << r.error;
  }
  EXPECT_EQ(*store_->generation(), g) << "a refused command changed the store";

  // With the credential, then cleared together with the mechanism.
  ASSERT_EQ(run("set-send-connector", {{"identity", "Relay"}, {"smarthostauthmechanism", "BasicAuth"},
                                       {user, "u"}, {password, "p"}}).exit_code, 0);
  EXPECT_NE(run("set-send-connector", {{"identity", "Relay"}, {user, ""}, {password, ""}}).exit_code, 0)
      << "BasicAuth keeps needing a credential";
  auto cleared = run("set-send-connector", {{"identity", "Relay"}, {"smarthostauthmechanism", "None"},
                                            {user, ""}, {password, ""}});
  ASSERT_EQ(cleared.exit_code, 0) << cleared.error;
  auto c = (*store_->send_connectors())[1];
  ASSERT_EQ(c.name, "Relay");
  EXPECT_TRUE(c.authentication_user.empty() && c.authentication_password.empty());
  EXPECT_EQ(run("set-send-connector", {{"identity", "Relay"}, {"smarthostauthmechanism", "ExternalAuthoritative"}}).exit_code, 0);
}

TEST(CredentialFile, TwoLinesUserThenPassword) {
  auto c = parse_credential_file("relay-user\nS3cret pw \n");
  ASSERT_TRUE(c) << c.error();
  EXPECT_EQ(c->user, "relay-user");
  EXPECT_EQ(c->password, "S3cret pw ") << "the password is kept as written";
  auto crlf = parse_credential_file("u\r\np\r\n\r\n");
  ASSERT_TRUE(crlf);
  EXPECT_EQ(crlf->password, "p");
  auto empty = parse_credential_file("");
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->user.empty() && empty->password.empty()) << "an empty file clears the credential";
  for (const char* bad : {"only-user\n", "\npassword\n", "u\np\nextra\n", "u\n\n"}) {
    auto r = parse_credential_file(bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_EQ(r.error().find("password\n"), std::string::npos);
    }
  }
  EXPECT_FALSE(parse_credential_file(std::string("u\np\0w\n", 7)));
}

}  // namespace
}  // namespace starling::mgmt
