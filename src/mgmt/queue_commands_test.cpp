// The queue commands against a fake QueueControl: identities, filters, result sizes, what each
// action asks of the server, confirmation, roles, the offline refusal, and export in pieces.
#include <gtest/gtest.h>

#include "core/queue_control.hpp"
#include "events/event_log.hpp"
#include "mgmt/commands.hpp"
#include "mgmt/queue_commands.hpp"
#include "mgmt/values.hpp"
#include "store/store.hpp"
#include "testing/temp_dir.hpp"

namespace starling::mgmt {
namespace {

using core::MessageAction;
using core::QueueAction;

class FakeQueues : public core::QueueControl {
 public:
  FakeQueues() {
    queue_list = {
        {"Submission", "Undefined", "", "", "Ready", 0, "", 0, 0, 0, 0, 0},
        {"contoso.com", "DnsConnectorDelivery", "contoso.com", "Internet", "Retry", 2,
         "451 4.3.0 try later", 1'800'000'000, 1'800'000'300, 0.5, 1.0 / 60, 0},
        {"Unreachable", "Unreachable", "", "", "Ready", 1, "", 0, 0, 0, 0, 0},
    };
    core::MessageInfo a;
    a.number = 3;
    a.queue = "contoso.com";
    a.internal_id = "18c0ffee00000001";
    a.from_address = "alice@fabrikam.com";
    a.subject = "Quarterly report";
    a.size = 20480;
    a.status = "Retry";
    a.date_received = 1'800'000'000;
    a.expiration_time = 1'800'172'800;
    a.last_error = "451 4.3.0 try later";
    a.retry_count = 2;
    a.internet_message_id = "<q@fabrikam.com>";
    a.recipients = {{"bob@contoso.com", "Retry", "451 4.3.0 try later", "contoso.com"}};
    core::MessageInfo b = a;  // the same message's other recipient, in Unreachable
    b.queue = "Unreachable";
    b.status = "Ready";
    b.recipients = {{"carol@nowhere.test", "Ready", "no route", "Unreachable"}};
    core::MessageInfo c;
    c.number = 4;
    c.queue = "contoso.com";
    c.internal_id = "18c0ffee00000002";
    c.subject = "Undeliverable";
    c.size = 900;
    c.status = "Active";
    c.recipients = {{"dave@contoso.com", "Active", "", "contoso.com"}};
    message_list = {a, b, c};
  }

  Result<std::vector<core::QueueInfo>> queues() override {
    if (!fail.empty()) return make_error(fail);
    return queue_list;
  }
  Result<std::vector<core::MessageInfo>> messages(bool include_recipients) override {
    if (!fail.empty()) return make_error(fail);
    asked_recipients = include_recipients;
    auto out = message_list;
    if (!include_recipients) {
      for (auto& m : out) m.recipients.clear();
    }
    return out;
  }
  Result<std::string> act_on_queue(const std::string& name, QueueAction action) override {
    if (on_action) on_action();
    queue_actions.emplace_back(name, action);
    if (!fail_action.empty()) return make_error(fail_action);
    return std::string("2 messages will be retried now");
  }
  Result<std::vector<core::MessageInfo>> act_on_message(const core::MessageRef& ref, MessageAction action) override {
    if (on_action) on_action();
    message_actions.emplace_back(ref, action);
    if (!fail_action.empty()) return make_error(fail_action);
    std::vector<core::MessageInfo> out;
    for (auto m : message_list) {
      if (m.internal_id == ref.internal_id && (ref.queue.empty() || ref.queue == m.queue)) {
        m.status = m.status == "Active" ? "PendingSuspend" : "Suspended";
        out.push_back(m);
      }
    }
    return out;
  }
  Result<ContentPiece> message_content(const core::MessageRef& ref, uint64_t offset, uint64_t max_bytes) override {
    pieces.push_back({ref.internal_id, offset, max_bytes});
    if (ref.internal_id != "18c0ffee00000001") return make_error("no such message");
    if (offset > content.size()) return make_error("offset beyond the message");
    return ContentPiece{content.substr(offset, max_bytes), content.size()};
  }

  struct Piece {
    std::string id;
    uint64_t offset, max_bytes;
  };
  std::vector<core::QueueInfo> queue_list;
  std::vector<core::MessageInfo> message_list;
  std::vector<std::pair<std::string, QueueAction>> queue_actions;
  std::vector<std::pair<core::MessageRef, MessageAction>> message_actions;
  std::vector<Piece> pieces;
  std::string content;
  std::string fail, fail_action;
  bool asked_recipients = false;
  std::function<void()> on_action;
};

class QueueCommands : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = store::Store::create(dir_.path / "starling.db");
    ASSERT_TRUE(store) << store.error();
    store_ = std::move(*store);
    ASSERT_TRUE(store_->set_server_settings(settings_));
    log_ = std::make_unique<events::EventLog>(store_.get());
    root_.user = "root";
    root_.local_admin = true;
  }

  Reply run(const Caller& who, std::string command, Json args = Json::object(), bool yes = false,
            bool interactive = false, core::QueueControl* queues = nullptr) {
    Context ctx{*store_, settings_, who, log_.get(), queues ? queues : &fake_};
    ctx.now = std::chrono::system_clock::from_time_t(1'800'000'600);
    Request r{std::move(command), std::move(args)};
    r.yes = yes;
    r.interactive = interactive;
    return execute(ctx, r);
  }
  Reply run(std::string command, Json args = Json::object(), bool yes = false, bool interactive = false) {
    return run(root_, std::move(command), std::move(args), yes, interactive);
  }
  Reply offline(std::string command, Json args) {
    Context ctx{*store_, settings_, root_, log_.get(), nullptr};
    return execute(ctx, Request{std::move(command), std::move(args)});
  }
  static std::vector<std::string> identities(const Reply& r) {
    std::vector<std::string> out;
    for (const auto& o : r.objects) out.push_back(o["Identity"].get<std::string>());
    return out;
  }
  Caller user(std::string name) {
    Caller c;
    c.uid = 1000;
    c.user = std::move(name);
    return c;
  }
  size_t changes_recorded() {
    store::EventQuery q;
    q.event_id = 13001;
    auto found = store_->events(q);
    return found ? found->size() : 0;
  }

  starling::testing::TempDir dir_{"starling-queue-commands"};
  std::unique_ptr<store::Store> store_;
  core::ServerSettings settings_{"mx", "mail.contoso.test"};
  Caller root_;
  std::unique_ptr<events::EventLog> log_;
  FakeQueues fake_;
};

TEST_F(QueueCommands, ExchangeNamesAreAliases) {
  for (auto [alias, name] : std::vector<std::pair<std::string, std::string>>{
           {"Get-Queue", "get-queue"}, {"Get-Message", "get-message"}, {"Retry-Queue", "retry-queue"},
           {"Suspend-Queue", "suspend-queue"}, {"Resume-Queue", "resume-queue"},
           {"Suspend-Message", "suspend-message"}, {"Resume-Message", "resume-message"},
           {"Remove-Message", "remove-message"}, {"Export-Message", "export-message"}}) {
    EXPECT_EQ(canonical_command(alias), name);
  }
}

TEST_F(QueueCommands, GetQueueShowsExchangeProperties) {
  auto r = run("get-queue");
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(identities(r), (std::vector<std::string>{"mx\\Submission", "mx\\contoso.com", "mx\\Unreachable"}));
  EXPECT_EQ(r.default_properties,
            (std::vector<std::string>{"Identity", "DeliveryType", "Status", "MessageCount", "NextHopDomain"}));
  const Json& q = r.objects[1];
  EXPECT_EQ(q["DeliveryType"], "DnsConnectorDelivery");
  EXPECT_EQ(q["NextHopDomain"], "contoso.com");
  EXPECT_EQ(q["NextHopConnector"], "Internet");
  EXPECT_EQ(q["Status"], "Retry");
  EXPECT_EQ(q["MessageCount"], 2);
  EXPECT_EQ(q["LastError"], "451 4.3.0 try later");
  EXPECT_EQ(q["LastRetryTime"], format_time(1'800'000'000));
  EXPECT_EQ(q["NextRetryTime"], format_time(1'800'000'300));
  EXPECT_EQ(q["IncomingRate"], 0.5);
  EXPECT_EQ(q["OutgoingRate"], 0.017);  // three decimals
  EXPECT_TRUE(r.objects[0]["LastRetryTime"].is_null());  // none: empty, not 1970
}

TEST_F(QueueCommands, QueueIdentities) {
  for (const char* id : {"mx\\contoso.com", "contoso.com", "MX\\CONTOSO.COM"}) {
    auto r = run("get-queue", {{"identity", id}});
    ASSERT_EQ(r.exit_code, 0) << id << ": " << r.error;
    EXPECT_EQ(identities(r), (std::vector<std::string>{"mx\\contoso.com"})) << id;
  }
  auto other = run("get-queue", {{"identity", "ex01\\contoso.com"}});
  EXPECT_EQ(other.exit_code, kExitUsage);
  EXPECT_NE(other.error.find("no server named 'ex01' (this server is 'mx')"), std::string::npos) << other.error;
  auto unknown = run("get-queue", {{"identity", "fabrikam.com"}});
  EXPECT_EQ(unknown.exit_code, kExitFailed);
  EXPECT_NE(unknown.error.find("no queue named 'fabrikam.com'"), std::string::npos) << unknown.error;
  for (const char* bad : {"a\\b\\c", "mx\\", ""}) {
    EXPECT_EQ(run("get-queue", {{"identity", bad}}).exit_code, kExitUsage) << bad;
  }
}

TEST_F(QueueCommands, GetQueueFilters) {
  auto r = run("get-queue", {{"filter", "Status -eq 'Retry'"}});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(identities(r), (std::vector<std::string>{"mx\\contoso.com"}));
  r = run("get-queue", {{"filter", "MessageCount -ge 1 -and DeliveryType -ne 'Unreachable'"}});
  EXPECT_EQ(identities(r), (std::vector<std::string>{"mx\\contoso.com"}));
  r = run("get-queue", {{"filter", "NextRetryTime -gt '2020-01-01'"}});
  EXPECT_EQ(identities(r), (std::vector<std::string>{"mx\\contoso.com"}));
  r = run("get-queue", {{"filter", "Status -eq 'Suspended'"}});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(r.objects.empty());
  auto bad = run("get-queue", {{"filter", "Status -eq Retry"}});
  EXPECT_EQ(bad.exit_code, kExitUsage);
  EXPECT_NE(bad.error.find("--filter: position 12:"), std::string::npos) << bad.error;
  bad = run("get-queue", {{"filter", "Subject -eq 'x'"}});  // a message's property, not a queue's
  EXPECT_NE(bad.error.find("no property 'Subject'"), std::string::npos) << bad.error;
}

TEST_F(QueueCommands, GetMessageShowsExchangeProperties) {
  auto r = run("get-message");
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(identities(r),
            (std::vector<std::string>{"mx\\contoso.com\\3", "mx\\Unreachable\\3", "mx\\contoso.com\\4"}));
  EXPECT_EQ(r.default_properties, (std::vector<std::string>{"Identity", "FromAddress", "Status", "Size", "Subject"}));
  const Json& m = r.objects[0];
  EXPECT_EQ(m["FromAddress"], "alice@fabrikam.com");
  EXPECT_EQ(m["Subject"], "Quarterly report");
  EXPECT_EQ(m["Size"], 20480);
  EXPECT_EQ(m["Status"], "Retry");
  EXPECT_EQ(m["DateReceived"], format_time(1'800'000'000));
  EXPECT_EQ(m["ExpirationTime"], format_time(1'800'172'800));
  EXPECT_EQ(m["LastError"], "451 4.3.0 try later");
  EXPECT_EQ(m["RetryCount"], 2);
  EXPECT_EQ(m["Queue"], "mx\\contoso.com");
  EXPECT_EQ(m["InternetMessageId"], "<q@fabrikam.com>");
  EXPECT_EQ(m["InternalMessageId"], "18c0ffee00000001");
  EXPECT_FALSE(m.contains("Recipients"));
  EXPECT_FALSE(fake_.asked_recipients);
  EXPECT_EQ(r.objects[2]["FromAddress"], "<>");  // the null reverse path
}

TEST_F(QueueCommands, MessageIdentities) {
  using V = std::vector<std::string>;
  const std::vector<std::pair<std::string, V>> cases{
      {"mx\\contoso.com\\3", {"mx\\contoso.com\\3"}},
      {"contoso.com\\3", {"mx\\contoso.com\\3"}},
      {"Unreachable\\3", {"mx\\Unreachable\\3"}},
      {"3", {"mx\\contoso.com\\3", "mx\\Unreachable\\3"}},          // in every queue that holds it
      {"18c0ffee00000002", {"mx\\contoso.com\\4"}},                  // its InternalMessageId
      {"18C0FFEE00000001", {}},                                      // ids are exact
  };
  for (const auto& [id, want] : cases) {
    auto r = run("get-message", {{"identity", id}});
    if (want.empty()) {
      EXPECT_EQ(r.exit_code, kExitFailed) << id;
      EXPECT_NE(r.error.find("no message '" + id + "'"), std::string::npos) << r.error;
      continue;
    }
    ASSERT_EQ(r.exit_code, 0) << id << ": " << r.error;
    EXPECT_EQ(identities(r), want) << id;
  }
  for (const char* bad : {"a\\b\\c\\d", "contoso.com\\x", "ex01\\contoso.com\\3", "\\3", "contoso.com\\"}) {
    EXPECT_EQ(run("get-message", {{"identity", bad}}).exit_code, kExitUsage) << bad;
  }
  EXPECT_EQ(run("get-message", {{"identity", "contoso.com\\99999999999999999999"}}).exit_code, kExitUsage);
}

TEST_F(QueueCommands, GetMessageByQueue) {
  auto r = run("get-message", {{"queue", "mx\\contoso.com"}});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(identities(r), (std::vector<std::string>{"mx\\contoso.com\\3", "mx\\contoso.com\\4"}));
  r = run("get-message", {{"queue", "unreachable"}});
  EXPECT_EQ(identities(r), (std::vector<std::string>{"mx\\Unreachable\\3"}));
  r = run("get-message", {{"queue", "Submission"}});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(r.objects.empty());
  r = run("get-message", {{"queue", "fabrikam.com"}});
  EXPECT_EQ(r.exit_code, kExitFailed);
  EXPECT_NE(r.error.find("no queue named 'fabrikam.com'"), std::string::npos) << r.error;
  r = run("get-message", {{"identity", "3"}, {"queue", "Unreachable"}});
  EXPECT_EQ(identities(r), (std::vector<std::string>{"mx\\Unreachable\\3"}));
  r = run("get-message", {{"identity", "contoso.com\\3"}, {"queue", "Unreachable"}});
  EXPECT_EQ(r.exit_code, kExitUsage);
}

TEST_F(QueueCommands, GetMessageFiltersAndRecipients) {
  auto r = run("get-message", {{"filter", "FromAddress -like '*@fabrikam.com' -and Status -eq 'retry'"}});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(identities(r), (std::vector<std::string>{"mx\\contoso.com\\3"}));
  r = run("get-message", {{"filter", "Size -lt 1KB"}});
  EXPECT_EQ(identities(r), (std::vector<std::string>{"mx\\contoso.com\\4"}));
  r = run("get-message", {{"filter", "Subject -like '*report*' -or Subject -eq 'undeliverable'"}});
  EXPECT_EQ(r.objects.size(), 3u);
  // A filter on the recipients fetches them, and shows them only when asked.
  r = run("get-message", {{"filter", "Recipients -like 'carol@*'"}});
  EXPECT_TRUE(fake_.asked_recipients);
  EXPECT_EQ(identities(r), (std::vector<std::string>{"mx\\Unreachable\\3"}));
  EXPECT_FALSE(r.objects[0].contains("Recipients"));
  r = run("get-message", {{"identity", "contoso.com\\3"}, {"includerecipientinfo", "true"}});
  ASSERT_EQ(r.objects.size(), 1u);
  EXPECT_EQ(r.objects[0]["Recipients"],
            Json::array({Json{{"Address", "bob@contoso.com"}, {"Status", "Retry"}, {"LastError", "451 4.3.0 try later"},
                              {"Queue", "mx\\contoso.com"}}}));
  EXPECT_EQ(run("get-message", {{"includerecipientinfo", "perhaps"}}).exit_code, kExitUsage);
  EXPECT_EQ(run("get-message", {{"filter", "MessageCount -gt 1"}}).exit_code, kExitUsage);
}

TEST_F(QueueCommands, ResultSizeBoundsTheReply) {
  auto r = run("get-message", {{"resultsize", "2"}});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(r.objects.size(), 2u);
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_NE(r.warnings[0].find("--result-size unlimited"), std::string::npos);
  r = run("get-message", {{"resultsize", "unlimited"}});
  EXPECT_EQ(r.objects.size(), 3u);
  EXPECT_TRUE(r.warnings.empty());
  for (const char* bad : {"0", "-1", "many"}) EXPECT_EQ(run("get-queue", {{"resultsize", bad}}).exit_code, kExitUsage);
  // The default is Exchange's 1000.
  fake_.message_list.resize(1001, fake_.message_list[0]);
  r = run("get-message");
  EXPECT_EQ(r.objects.size(), 1000u);
  EXPECT_EQ(r.warnings.size(), 1u);
}

TEST_F(QueueCommands, QueueActionsAskTheServerAndAreRecorded) {
  struct Case {
    std::string command;
    Json args;
    QueueAction action;
  };
  const std::vector<Case> cases{
      {"retry-queue", {{"identity", "mx\\CONTOSO.COM"}}, QueueAction::kRetry},
      {"retry-queue", {{"identity", "Unreachable"}, {"resubmit", "true"}}, QueueAction::kResubmit},
      {"retry-queue", {{"identity", "Unreachable"}, {"resubmit", "false"}}, QueueAction::kRetry},
      {"suspend-queue", {{"identity", "contoso.com"}}, QueueAction::kSuspend},
      {"resume-queue", {{"identity", "contoso.com"}}, QueueAction::kResume},
  };
  size_t recorded = changes_recorded();
  for (const auto& c : cases) {
    fake_.queue_actions.clear();
    auto r = run(c.command, c.args);
    ASSERT_EQ(r.exit_code, 0) << c.command << ": " << r.error;
    ASSERT_EQ(fake_.queue_actions.size(), 1u) << c.command;
    EXPECT_EQ(fake_.queue_actions[0].second, c.action) << c.command;
    EXPECT_EQ(fake_.queue_actions[0].first, c.args["identity"] == "mx\\CONTOSO.COM" || c.args["identity"] == "contoso.com"
                                                ? "contoso.com"
                                                : "Unreachable");
    ASSERT_EQ(r.messages.size(), 1u);
    EXPECT_NE(r.messages[0].find("2 messages will be retried now"), std::string::npos) << r.messages[0];
    EXPECT_FALSE(r.change.empty());
    EXPECT_FALSE(r.reconfigures) << c.command << ": the store did not change";
    EXPECT_EQ(changes_recorded(), ++recorded) << c.command;
  }
}

TEST_F(QueueCommands, QueueActionRefusals) {
  auto r = run("retry-queue");
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_NE(r.error.find("which queue?"), std::string::npos);
  r = run("suspend-queue", {{"identity", "fabrikam.com"}});
  EXPECT_EQ(r.exit_code, kExitFailed);
  EXPECT_NE(r.error.find("no queue named 'fabrikam.com'"), std::string::npos) << r.error;
  EXPECT_EQ(run("retry-queue", {{"identity", "Unreachable"}, {"resubmit", "sometimes"}}).exit_code, kExitUsage);
  EXPECT_EQ(run("suspend-queue", {{"identity", "Unreachable"}, {"resubmit", "true"}}).exit_code, kExitUsage);
  fake_.fail_action = "the Submission queue cannot be suspended";
  r = run("suspend-queue", {{"identity", "Submission"}});
  EXPECT_EQ(r.exit_code, kExitFailed);
  EXPECT_EQ(r.error, "the Submission queue cannot be suspended");
  EXPECT_TRUE(r.change.empty());
  EXPECT_TRUE(fake_.queue_actions.size() == 1u);
}

TEST_F(QueueCommands, MessageActionsNameTheMessage) {
  auto r = run("suspend-message", {{"identity", "mx\\contoso.com\\4"}});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  ASSERT_EQ(fake_.message_actions.size(), 1u);
  const auto& [ref, action] = fake_.message_actions[0];
  EXPECT_EQ(action, MessageAction::kSuspend);
  EXPECT_EQ(ref.number, 4u);
  EXPECT_EQ(ref.internal_id, "18c0ffee00000002");
  EXPECT_EQ(ref.queue, "contoso.com");
  EXPECT_EQ(identities(r), (std::vector<std::string>{"mx\\contoso.com\\4"}));
  EXPECT_EQ(r.objects[0]["Status"], "PendingSuspend");
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_NE(r.messages[0].find("PendingSuspend"), std::string::npos) << r.messages[0];
  EXPECT_FALSE(r.reconfigures);
  EXPECT_NE(r.change.find("18c0ffee00000002"), std::string::npos) << r.change;
  // Without a queue, the message in every queue.
  r = run("resume-message", {{"identity", "18c0ffee00000001"}});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(fake_.message_actions[1].first.queue, "");
  EXPECT_EQ(fake_.message_actions[1].second, MessageAction::kResume);
  EXPECT_EQ(r.objects.size(), 2u);
  r = run("suspend-message", {{"identity", "contoso.com\\77"}});
  EXPECT_EQ(r.exit_code, kExitFailed);
  EXPECT_NE(r.error.find("no message 'contoso.com\\77'"), std::string::npos) << r.error;
  EXPECT_EQ(fake_.message_actions.size(), 2u);
  EXPECT_EQ(run("suspend-message", {{"identity", "3"}, {"withndr", "false"}}).exit_code, kExitUsage);
}

TEST_F(QueueCommands, RemoveMessageAsksFirst) {
  // No terminal, no --yes: refused, nothing asked of the server.
  auto r = run("remove-message", {{"identity", "contoso.com\\3"}});
  EXPECT_EQ(r.exit_code, kExitFailed);
  EXPECT_NE(r.error.find("add --yes"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("with a non-delivery report"), std::string::npos) << r.error;
  EXPECT_TRUE(fake_.message_actions.empty());
  // A terminal: the question, still nothing done.
  r = run("remove-message", {{"identity", "contoso.com\\3"}}, false, true);
  EXPECT_NE(r.confirm.find("Remove message mx\\contoso.com\\3 (18c0ffee00000001, from alice@fabrikam.com)"),
            std::string::npos)
      << r.confirm;
  EXPECT_TRUE(fake_.message_actions.empty());
  EXPECT_EQ(changes_recorded(), 0u);
  // Confirmed: with a report by default, without when asked.
  r = run("remove-message", {{"identity", "contoso.com\\3"}}, true);
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(fake_.message_actions.back().second, MessageAction::kRemoveWithNdr);
  r = run("remove-message", {{"identity", "contoso.com\\3"}, {"withndr", "false"}}, true);
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_EQ(fake_.message_actions.back().second, MessageAction::kRemoveWithoutNdr);
  EXPECT_NE(r.change.find("without a report"), std::string::npos) << r.change;
  r = run("remove-message", {{"identity", "contoso.com\\3"}, {"withndr", "$true"}}, true);
  EXPECT_EQ(fake_.message_actions.back().second, MessageAction::kRemoveWithNdr);
  EXPECT_EQ(run("remove-message", {{"identity", "contoso.com\\3"}, {"withndr", "maybe"}}, true).exit_code, kExitUsage);
  EXPECT_EQ(changes_recorded(), 3u);
}

TEST_F(QueueCommands, ExportInPieces) {
  fake_.content = "Received: from x\r\nSubject: Quarterly report\r\n\r\n" +
                  std::string(kExportPieceBytes * 2 + 5, 'a') + "\r\n";
  std::string joined;
  uint64_t offset = 0;
  size_t recorded = changes_recorded();
  while (true) {
    Json args{{"identity", offset == 0 ? "contoso.com\\3" : "18c0ffee00000001"}};
    if (offset > 0) args[std::string(kExportOffsetKey)] = std::to_string(offset);
    auto r = run("export-message", args);
    ASSERT_EQ(r.exit_code, 0) << r.error;
    ASSERT_EQ(r.objects.size(), 1u);
    EXPECT_EQ(r.objects[0]["Size"], fake_.content.size());
    EXPECT_EQ(r.objects[0]["InternalMessageId"], "18c0ffee00000001");
    EXPECT_EQ(r.change.empty(), offset > 0) << "recorded once per export";
    auto bytes = from_base64(r.file_base64);
    ASSERT_TRUE(bytes);
    EXPECT_LE(bytes->size(), kExportPieceBytes);
    joined += *bytes;
    offset += bytes->size();
    if (offset >= fake_.content.size() || bytes->empty()) break;
  }
  EXPECT_EQ(joined, fake_.content);
  EXPECT_EQ(fake_.pieces.size(), 3u);
  for (const auto& p : fake_.pieces) EXPECT_EQ(p.max_bytes, kExportPieceBytes);
  EXPECT_EQ(changes_recorded(), recorded + 1);
  for (const char* bad : {"-1", "x", ""}) {
    auto r = run("export-message", {{"identity", "3"}, {std::string(kExportOffsetKey), bad}});
    EXPECT_EQ(r.exit_code, kExitUsage) << bad;
  }
  auto r = run("export-message", {{"identity", "3"}, {std::string(kExportOffsetKey), "999999999"}});
  EXPECT_EQ(r.exit_code, kExitFailed);
  EXPECT_EQ(r.error, "offset beyond the message");
  EXPECT_EQ(run("export-message", {{"identity", "contoso.com\\99"}}).exit_code, kExitFailed);
  // The offset key is the shell's, never an option: option keys are lower case.
  EXPECT_EQ(run("export-message", {{"identity", "3"}, {"exportoffset", "5"}}).exit_code, kExitUsage);
  EXPECT_NE(option_key("--Export:Offset"), kExportOffsetKey);
}

TEST_F(QueueCommands, OfflineTheyNeedTheServer) {
  const std::vector<std::pair<std::string, Json>> cases{
      {"get-queue", Json::object()},
      {"get-message", {{"filter", "Status -eq 'Retry'"}}},
      {"retry-queue", {{"identity", "Unreachable"}, {"resubmit", "true"}}},
      {"suspend-queue", {{"identity", "contoso.com"}}},
      {"resume-queue", {{"identity", "contoso.com"}}},
      {"suspend-message", {{"identity", "3"}}},
      {"resume-message", {{"identity", "3"}}},
      {"remove-message", {{"identity", "3"}}},
      {"export-message", {{"identity", "3"}}},
  };
  for (const auto& [command, args] : cases) {
    auto r = offline(command, args);
    EXPECT_EQ(r.exit_code, kExitFailed) << command;
    EXPECT_EQ(r.error, command + " needs the running server: the queues are starlingd's. Start starlingd and run "
                                 "the command without --offline");
  }
  // Usage errors are still usage errors without the server.
  EXPECT_EQ(offline("get-queue", {{"filter", "Status -eq"}}).exit_code, kExitUsage);
  EXPECT_EQ(offline("get-queue", {{"colour", "red"}}).exit_code, kExitUsage);
}

TEST_F(QueueCommands, ServerErrorsAreShown) {
  fake_.fail = "the delivery thread did not answer within 5 s";
  for (const char* command : {"get-queue", "get-message"}) {
    auto r = run(command);
    EXPECT_EQ(r.exit_code, kExitFailed) << command;
    EXPECT_EQ(r.error, fake_.fail);
  }
}

TEST_F(QueueCommands, RolesAsExchange) {
  ASSERT_TRUE(store_->add_role_assignment({"ViewOnlyAdministrator", "User", "viewer"}));
  ASSERT_TRUE(store_->add_role_assignment({"ServerAdministrator", "User", "operator"}));
  const std::vector<std::pair<std::string, Json>> changing{
      {"retry-queue", {{"identity", "contoso.com"}}},     {"suspend-queue", {{"identity", "contoso.com"}}},
      {"resume-queue", {{"identity", "contoso.com"}}},    {"suspend-message", {{"identity", "4"}}},
      {"resume-message", {{"identity", "4"}}},            {"remove-message", {{"identity", "4"}}},
      {"export-message", {{"identity", "3"}}},
  };
  fake_.content = "Subject: x\r\n\r\nbody\r\n";
  for (const char* command : {"get-queue", "get-message"}) {
    EXPECT_EQ(run(user("viewer"), command).exit_code, 0) << command;
    EXPECT_EQ(run(user("nobody"), command).exit_code, kExitDenied) << command;
  }
  for (const auto& [command, args] : changing) {
    auto denied = run(user("viewer"), command, args, true);
    EXPECT_EQ(denied.exit_code, kExitDenied) << command;
    EXPECT_NE(denied.error.find("needs the ServerAdministrator role"), std::string::npos) << denied.error;
    EXPECT_EQ(run(user("operator"), command, args, true).exit_code, 0) << command;
  }
  EXPECT_EQ(fake_.message_actions.size() + fake_.queue_actions.size(), 6u) << "only the operator's";
}

// The store's write lock is not held while the server is asked: the delivery thread writes its
// events to the store, and would wait for a command that waits for it.
TEST_F(QueueCommands, TheStoreIsFreeWhileTheServerIsAsked) {
  bool wrote = false;
  fake_.on_action = [&] {
    auto other = store::Store::open(dir_.path / "starling.db");
    ASSERT_TRUE(other) << other.error();
    events::EventLog log(other->get());
    wrote = static_cast<bool>((*other)->set_setting("queue_test", "1"));
  };
  auto r = run("retry-queue", {{"identity", "contoso.com"}});
  ASSERT_EQ(r.exit_code, 0) << r.error;
  EXPECT_TRUE(wrote);
}

}  // namespace
}  // namespace starling::mgmt
