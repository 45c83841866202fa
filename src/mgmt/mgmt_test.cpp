// The management commands run in-process against a real store: authorization, validation
// (refusals change nothing), confirmations, and the certificate life cycle.
#include <gtest/gtest.h>

#include <filesystem>

#include "events/event_log.hpp"
#include "mgmt/request.hpp"
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

}  // namespace
}  // namespace starling::mgmt
