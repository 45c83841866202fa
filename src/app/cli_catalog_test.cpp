// The command catalog against the rest: every command starlingd knows is in it (and nothing
// else), with the same Exchange alias; the property options are exactly the objects'
// properties; every option it lists gets through the parser to a handler that accepts it (run
// in-process against a scratch store); every numeric property a command shows has a kind. And
// the parser: global options anywhere, PowerShell spellings, switches, repeats, secrets refused.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>

#include "app/cli_catalog.hpp"
#include "app/cli_help.hpp"
#include "app/command_line.hpp"
#include "app/shell.hpp"
#include "core/connector.hpp"
#include "core/names.hpp"
#include "core/transport_settings.hpp"
#include "events/event_log.hpp"
#include "mgmt/commands.hpp"
#include "mgmt/values.hpp"
#include "store/store.hpp"
#include "testing/temp_dir.hpp"

namespace starling::app {
namespace {

namespace fs = std::filesystem;
using mgmt::Json;

// Equal as JSON objects, whatever the order of their keys.
bool same(const Json& a, const Json& b) { return nlohmann::json::parse(a.dump()) == nlohmann::json::parse(b.dump()); }

Result<Invocation> parse(std::vector<std::string> words) {
  words.insert(words.begin(), "starling");
  return parse_command_line(words);
}

TEST(Catalog, HoldsEveryServerCommandAndNothingElse) {
  std::set<std::string> server;
  for (const auto& name : mgmt::command_names()) {
    server.insert(name);
    const CliCommand* c = find_cli_command(name);
    ASSERT_NE(c, nullptr) << name << " is missing from the catalog (cli_catalog.cpp)";
    EXPECT_FALSE(c->local) << name;
  }
  for (const auto& c : cli_commands()) {
    EXPECT_FALSE(c.summary.empty()) << c.name;
    if (c.local) continue;
    EXPECT_TRUE(server.contains(c.name)) << c.name << " is in the catalog but starlingd does not know it";
    EXPECT_EQ(mgmt::canonical_command(c.alias), c.name) << c.alias << " is not starlingd's alias of " << c.name;
    EXPECT_EQ(find_cli_command(c.alias), &c);
  }
}

// Json property names of an object, minus those shown but not set.
std::set<std::string> settable(const Json& j) {
  std::set<std::string> out;
  for (const auto& [k, v] : j.items()) out.insert(k);
  return out;
}

std::set<std::string> catalog_properties(const std::string& command) {
  std::set<std::string> out;
  for (const auto& o : find_cli_command(command)->options) {
    EXPECT_FALSE(o.property.empty()) << command << " --" << o.name;
    out.insert(o.property);
  }
  return out;
}

TEST(Catalog, PropertyOptionsAreTheObjectsProperties) {
  auto receive = settable(Json(core::ReceiveConnector{}));
  auto send = settable(Json(core::SendConnector{}));
  auto transport = settable(Json(core::TransportSettings{}));
  EXPECT_EQ(catalog_properties("new-receive-connector"), receive);
  EXPECT_EQ(catalog_properties("set-receive-connector"), receive);
  EXPECT_EQ(catalog_properties("new-send-connector"), send);
  EXPECT_EQ(catalog_properties("set-send-connector"), send);
  EXPECT_EQ(catalog_properties("set-transport-server"), transport);
  // Option names are the properties' names dashed, so both spellings find the option.
  for (const char* command : {"set-receive-connector", "set-send-connector", "set-transport-server"}) {
    for (const auto& o : find_cli_command(command)->options) {
      if (o.property == "AuthenticationCredential") continue;  // read from a file: --...-file
      EXPECT_EQ(mgmt::option_key(o.name), mgmt::option_key(o.property)) << command;
    }
  }
}

TEST(Catalog, EveryOptionHasHelpAndUniqueNames) {
  for (const auto& c : cli_commands()) {
    std::set<std::string> keys;
    for (const auto& o : c.options) {
      EXPECT_FALSE(o.help.empty()) << c.name << " --" << o.name;
      EXPECT_TRUE(keys.insert(mgmt::option_key(o.name)).second) << c.name << " --" << o.name << " twice";
      EXPECT_EQ(find_cli_option(&c, o.name), &o) << c.name << " --" << o.name << " is a global option's name";
    }
    std::string help = command_help(c);
    for (const auto& o : c.options) EXPECT_NE(help.find("--" + o.name), std::string::npos) << c.name << " " << o.name;
    if (!c.alias.empty()) {
      EXPECT_NE(help.find(c.alias), std::string::npos) << c.name;
    }
    EXPECT_NE(general_help().find(c.name), std::string::npos) << c.name;
  }
}

// --- the catalog against starlingd's handlers -------------------------------------------------

class AgainstHandlers : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = std::make_unique<starling::testing::TempDir>("starling-catalog");
    auto store = store::Store::create(tmp_->path / "template.db");
    ASSERT_TRUE(store) << store.error();
    ASSERT_TRUE((*store)->set_server_settings(settings()));
    core::ReceiveConnector c;
    c.name = "Default mx";
    c.bindings = {{"127.0.0.1", 2525}};
    ASSERT_TRUE((*store)->add_receive_connector(c));
    ASSERT_TRUE((*store)->add_accepted_domain("contoso.test"));
    events::EventLog log(store->get());
    auto run = [&](std::string command, Json args) {
      mgmt::Context ctx{**store, settings(), root(), &log};
      mgmt::Request r{std::move(command), std::move(args)};
      r.force = true;
      return mgmt::execute(ctx, r);
    };
    auto cert = run("new-certificate", {{"keytype", "ecdsa-p256"}, {"domain", "mail.contoso.test"}});
    ASSERT_EQ(cert.exit_code, 0) << cert.error;
    thumbprint_ = cert.objects[0]["Thumbprint"].get<std::string>();
    ASSERT_EQ(run("new-send-connector", {{"name", "Out"}, {"addressspaces", "example.net"}}).exit_code, 0);
    ASSERT_EQ(run("new-mailbox", {{"address", "alice@contoso.test"}}).exit_code, 0);
    ASSERT_EQ(run("new-distribution-group", {{"address", "team@contoso.test"}}).exit_code, 0);
    write(tmp_->path / "password", "secret\n");
    write(tmp_->path / "credential", "relayuser\nrelaypass\n");
    write(tmp_->path / "certificate.pem", "not a certificate\n");
  }
  static void TearDownTestSuite() {
    tmp_.reset();
  }

  static core::ServerSettings settings() { return {"mx", "mail.contoso.test"}; }
  static mgmt::Caller root() {
    mgmt::Caller c;
    c.user = "root";
    c.local_admin = true;
    return c;
  }
  static void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

  // A fresh copy of the template store for each run: what one option changes (a name) cannot
  // hide what the next is refused for.
  mgmt::Reply execute(const mgmt::Request& r) {
    fs::path db = tmp_->path / "case.db";
    fs::remove(db);
    fs::copy_file(tmp_->path / "template.db", db);
    auto store = store::Store::open(db);
    EXPECT_TRUE(store) << store.error();
    mgmt::Context ctx{**store, settings(), root(), nullptr};
    return mgmt::execute(ctx, r);
  }

  // An argument that names an existing object, for the commands that need one.
  static std::vector<std::string> identity(const CliCommand& c) {
    const std::string& n = c.name;
    if (c.identity.empty() || n.starts_with("new-")) {
      return n == "new-accepted-domain" ? std::vector<std::string>{"new.contoso.test"} : std::vector<std::string>{};
    }
    if (n == "import-certificate") return {(tmp_->path / "certificate.pem").string()};
    if (n.ends_with("-certificate")) return {thumbprint_};
    if (n.ends_with("receive-connector")) return {"Default mx"};
    if (n.ends_with("send-connector")) return {"Out"};
    if (n.ends_with("transport-server")) return {"mx"};
    if (n.ends_with("accepted-domain")) return {"contoso.test"};
    if (n.ends_with("mailbox")) return {"alice@contoso.test"};
    if (n.ends_with("distribution-group")) return {"team@contoso.test"};
    if (n.ends_with("-queue")) return {"mx\\Unreachable"};
    if (n.ends_with("-message")) return {"mx\\Unreachable\\1"};
    return {};
  }

  static std::string sample(const CliCommand& c, const CliOption& o) {
    if (c.name == "import-certificate" && o.name == "file") return (tmp_->path / "certificate.pem").string();
    if (o.name == "password-file") return (tmp_->path / "password").string();
    if (o.name == "authentication-credential-file") return (tmp_->path / "credential").string();
    if (o.name == "filter") return "Status -eq 'Retry'";
    if (o.value_name == "FILE") return (tmp_->path / "output").string();
    if (o.value_name == "BOOL") return "true";
    if (o.value_name == "SIZE") return "20MB";
    if (o.value_name == "DURATION") return "00:05:00";
    if (o.value_name == "N") return "5";
    return "x";
  }

  inline static std::unique_ptr<starling::testing::TempDir> tmp_;
  inline static std::string thumbprint_;
};

TEST_F(AgainstHandlers, StarlingdAcceptsEveryOptionTheCatalogLists) {
  size_t checked = 0;
  for (const auto& c : cli_commands()) {
    if (c.local) continue;
    for (const auto& o : c.options) {
      std::vector<std::string> words{c.name};
      for (const auto& id : identity(c)) words.push_back(id);
      words.push_back("--" + o.name);
      if (!o.is_switch()) words.push_back(sample(c, o));
      if ((c.name == "export-certificate" || c.name == "export-message") && o.name != "file") {  // somewhere to write
        words.push_back("--file");
        words.push_back((tmp_->path / "output").string());
      }
      auto inv = parse(words);
      ASSERT_TRUE(inv) << c.name << " --" << o.name << ": " << inv.error();
      auto prepared = prepare_request(*inv, false);
      ASSERT_TRUE(prepared) << c.name << " --" << o.name << ": " << prepared.error();
      mgmt::Reply reply = execute(prepared->request);
      std::string said = core::to_lower(reply.error);
      EXPECT_EQ(said.find("unknown option"), std::string::npos) << c.name << " --" << o.name << ": " << reply.error;
      EXPECT_EQ(said.find("unknown property"), std::string::npos) << c.name << " --" << o.name << ": " << reply.error;
      EXPECT_EQ(said.find("not accepted"), std::string::npos) << c.name << " --" << o.name << ": " << reply.error;
      EXPECT_EQ(said.find("which"), std::string::npos) << c.name << " --" << o.name << ": " << reply.error;
      ++checked;
    }
  }
  EXPECT_GT(checked, 100u);
}

// Every numeric property of every object a command shows is a duration, a size or a plain
// number: a new one must be classified in mgmt::numeric_kind (values.cpp) to be shown right.
TEST_F(AgainstHandlers, EveryNumericPropertyShownHasAKind) {
  std::set<std::string> seen;
  auto check = [&](const std::string& what, const Json& objects) {
    for (const auto& o : objects) {
      for (const auto& [k, v] : o.items()) {
        if (!v.is_number()) continue;
        seen.insert(k);
        EXPECT_TRUE(mgmt::numeric_kind(k).has_value())
            << what << " shows the number " << k << ": classify it in mgmt::numeric_kind";
      }
    }
  };
  for (const auto& c : cli_commands()) {
    if (c.local || !(c.name.starts_with("get-") || c.name.starts_with("test-"))) continue;
    mgmt::Request r{c.name};
    check(c.name, execute(r).objects);
  }
  check("a receive connector", Json::array({Json(core::ReceiveConnector{})}));
  check("a send connector", Json::array({Json(core::SendConnector{})}));
  check("the transport server", Json::array({Json(core::TransportSettings{})}));
  for (const char* expected : {"MaxMessageSize", "ConnectionTimeout", "Port", "PublicKeySize", "EventId"}) {
    EXPECT_TRUE(seen.contains(expected)) << expected << " was not seen: the walk above missed objects";
  }
}

TEST_F(AgainstHandlers, ConnectorsShowTheInheritedFqdn) {
  auto r = execute(mgmt::Request{"get-receive-connector"});
  ASSERT_EQ(r.objects.size(), 1u);
  EXPECT_EQ(r.objects[0]["Fqdn"], "");
  EXPECT_EQ(r.objects[0]["EffectiveFqdn"], "mail.contoso.test");
}

// --- the parser ----------------------------------------------------------------------------------

TEST(CommandLine, GlobalOptionsAnywhere) {
  for (auto words : std::vector<std::vector<std::string>>{
           {"--data-dir", "/srv/mx", "get-certificate"},
           {"get-certificate", "--data-dir", "/srv/mx"},
           {"--data-dir=/srv/mx", "Get-ExchangeCertificate"},
           {"-DataDir", "/srv/mx", "get-certificate"}}) {
    auto inv = parse(words);
    ASSERT_TRUE(inv) << words[0] << ": " << inv.error();
    EXPECT_EQ(inv->command->name, "get-certificate");
    EXPECT_EQ(inv->data_dir, "/srv/mx");
  }
  auto inv = parse({"--format", "json", "--offline", "get-event", "--newest", "5", "--yes"});
  ASSERT_TRUE(inv) << inv.error();
  EXPECT_EQ(inv->format, "json");
  EXPECT_TRUE(inv->offline);
  EXPECT_TRUE(inv->yes);
  EXPECT_TRUE(same(inv->args, Json{{"newest", "5"}})) << inv->args.dump();
}

TEST(CommandLine, DataDirFromTheEnvironmentElseTheDefault) {
  ::unsetenv("STARLING_DATA_DIR");
  EXPECT_EQ(parse({"get-certificate"})->data_dir, "/var/lib/starling");
  ::setenv("STARLING_DATA_DIR", "/srv/env", 1);
  EXPECT_EQ(parse({"get-certificate"})->data_dir, "/srv/env");
  EXPECT_EQ(parse({"get-certificate", "--data-dir", "/srv/arg"})->data_dir, "/srv/arg");
  ::unsetenv("STARLING_DATA_DIR");
}

TEST(CommandLine, ExchangeSpellings) {
  auto inv = parse({"Enable-ExchangeCertificate", "-Thumbprint", "AB12", "-Services", "SMTP", "-Confirm:$false"});
  ASSERT_TRUE(inv) << inv.error();
  EXPECT_EQ(inv->command->name, "enable-certificate");
  EXPECT_TRUE(same(inv->args, Json{{"thumbprint", "AB12"}, {"services", "SMTP"}})) << inv->args.dump();
  EXPECT_TRUE(inv->yes);
  inv = parse({"Set-ReceiveConnector", "Default mx", "-MaxMessageSize:20MB", "--require_tls=$true",
               "--CONNECTIONTIMEOUT", "00:10:00", "--remote-ip-ranges", ""});
  ASSERT_TRUE(inv) << inv.error();
  EXPECT_TRUE(same(inv->args, Json{{"identity", "Default mx"}, {"maxmessagesize", "20MB"}, {"requiretls", "$true"},
                             {"connectiontimeout", "00:10:00"}, {"remoteipranges", ""}})) << inv->args.dump();
  EXPECT_FALSE(parse({"Set-ReceiveConnector", "Default mx", "-Confirm:$true"})->yes);
}

TEST(CommandLine, SwitchesRepeatsAndAliases) {
  auto inv = parse({"new-certificate", "--exportable", "--domain", "a.test", "--domain-name", "b.test,c.test",
                    "--binary", "false"});
  ASSERT_TRUE(inv) << inv.error();
  EXPECT_TRUE(same(inv->args, Json{{"domain", {"a.test", "b.test,c.test"}}, {"exportable", "true"}, {"binary", "false"}})) << inv->args.dump();
  // A switch takes a following word only when it is a boolean: here the file is the argument.
  inv = parse({"import-certificate", "--trusted-root", "ca.pem"});
  ASSERT_TRUE(inv) << inv.error();
  EXPECT_TRUE(same(inv->args, Json{{"trustedroot", "true"}, {"identity", "ca.pem"}})) << inv->args.dump();
  EXPECT_EQ(parse({"get-event", "--property", "EventId,Level", "--property", "Message"})->properties,
            (std::vector<std::string>{"EventId", "Level", "Message"}));
}

TEST(CommandLine, SecretsAreNeverArguments) {
  for (auto words : std::vector<std::vector<std::string>>{{"new-mailbox", "--address", "a@b", "--password", "x"},
                                                         {"import-certificate", "f.pfx", "-Password", "x"},
                                                         {"get-certificate", "--password=x"},
                                                         {"--password", "x", "get-event"}}) {
    auto inv = parse(words);
    ASSERT_FALSE(inv) << words[0];
    EXPECT_NE(inv.error().find("--password-file FILE"), std::string::npos) << inv.error();
    EXPECT_NE(inv.error().find("STARLING_PASSWORD"), std::string::npos) << inv.error();
  }
  auto inv = parse({"set-send-connector", "Out", "--authentication-credential", "u:p"});
  ASSERT_FALSE(inv);
  EXPECT_NE(inv.error().find("--authentication-credential-file"), std::string::npos) << inv.error();
}

TEST(CommandLine, RefusalsSayWhy) {
  auto bogus = parse({"set-receive-connector", "Default mx", "--bogus-prop", "1"});
  ASSERT_FALSE(bogus);
  EXPECT_NE(bogus.error().find("unknown property 'bogusprop'"), std::string::npos) << bogus.error();
  EXPECT_NE(bogus.error().find("Banner"), std::string::npos) << bogus.error();
  auto colour = parse({"get-event", "--colour", "red"});
  ASSERT_FALSE(colour);
  EXPECT_NE(colour.error().find("--newest"), std::string::npos) << colour.error();
  EXPECT_FALSE(parse({"frobnicate"}));
  EXPECT_FALSE(parse({"get-event", "extra"}));  // takes no argument
  EXPECT_FALSE(parse({"get-certificate", "--format", "xml"}));
  EXPECT_FALSE(parse({"new-certificate", "--exportable", "maybe"}));
}

TEST(CommandLine, HelpAndVersion) {
  auto inv = parse({"help", "get-event"});
  ASSERT_TRUE(inv) << inv.error();
  EXPECT_TRUE(inv->help);
  EXPECT_EQ(inv->command->name, "get-event");
  inv = parse({"Get-EventLog", "-h"});
  EXPECT_TRUE(inv->help);
  EXPECT_EQ(inv->command->name, "get-event");
  inv = parse({"--help"});
  EXPECT_TRUE(inv->help);
  EXPECT_EQ(inv->command, nullptr);
  EXPECT_TRUE(parse({"--version"})->version);
}

}  // namespace
}  // namespace starling::app
