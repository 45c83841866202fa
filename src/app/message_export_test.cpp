// export-message on the shell's side, against a scripted starlingd: the file is the message
// whole, asked for in pieces; an existing file needs --force; any failure leaves nothing behind.
#include "app/message_export.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "mgmt/queue_commands.hpp"
#include "mgmt/values.hpp"
#include "testing/temp_dir.hpp"

namespace starling::app {
namespace {

namespace fs = std::filesystem;
using mgmt::Json;

class MessageExport : public ::testing::Test {
 protected:
  // Serves `content_` as starlingd does: a piece from the asked offset, the whole size beside it.
  Result<mgmt::Reply> serve(const mgmt::Request& r) {
    requests_.push_back(r);
    uint64_t offset = 0;
    if (auto it = r.args.find(std::string(mgmt::kExportOffsetKey)); it != r.args.end()) {
      offset = std::stoull(it->get<std::string>());
    }
    mgmt::Reply reply;
    uint64_t total = content_.size() + (requests_.size() > 1 ? grow_by_ : 0);
    reply.objects.push_back(Json{{"Identity", "mx\\contoso.com\\3"}, {"InternalMessageId", "18c0ffee00000001"},
                                 {"Size", total}});
    reply.file_base64 = mgmt::to_base64(content_.substr(std::min<uint64_t>(offset, content_.size()), piece_));
    return reply;
  }
  RunRequest runner() {
    return [this](const mgmt::Request& r) { return serve(r); };
  }
  static mgmt::Request request() { return mgmt::Request{"export-message", Json{{"identity", "contoso.com\\3"}}}; }
  std::string read(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  size_t entries() { return static_cast<size_t>(std::distance(fs::directory_iterator(dir_.path), {})); }

  starling::testing::TempDir dir_{"starling-export"};
  fs::path file_ = dir_.path / "message.eml";
  std::string content_;
  uint64_t piece_ = mgmt::kExportPieceBytes;
  uint64_t grow_by_ = 0;
  std::vector<mgmt::Request> requests_;
};

TEST_F(MessageExport, WritesTheMessageWholeFromPieces) {
  content_ = "Received: from client\r\nSubject: big\r\n\r\n" + std::string(mgmt::kExportPieceBytes * 2 + 77, 'x');
  auto r = export_message(request(), file_.string(), false, runner());
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->exit_code, 0);
  EXPECT_TRUE(r->objects.empty());
  EXPECT_TRUE(r->file_base64.empty());
  ASSERT_EQ(r->messages.size(), 1u);
  EXPECT_NE(r->messages[0].find("mx\\contoso.com\\3"), std::string::npos) << r->messages[0];
  EXPECT_EQ(read(file_), content_);
  struct stat st{};
  ASSERT_EQ(::stat(file_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(requests_.size(), 3u);
  EXPECT_FALSE(requests_[0].args.contains(std::string(mgmt::kExportOffsetKey)));
  EXPECT_EQ(requests_[1].args["identity"], "18c0ffee00000001");  // the rest by InternalMessageId
  EXPECT_EQ(requests_[1].args[std::string(mgmt::kExportOffsetKey)], std::to_string(mgmt::kExportPieceBytes));
  EXPECT_EQ(requests_[2].args[std::string(mgmt::kExportOffsetKey)], std::to_string(2 * mgmt::kExportPieceBytes));
  EXPECT_EQ(entries(), 1u) << "no temporary file left";
}

TEST_F(MessageExport, SmallPiecesAndTheEmptyMessage) {
  content_ = "Subject: small\r\n\r\nbody\r\n";
  piece_ = 5;
  auto r = export_message(request(), file_.string(), false, runner());
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(read(file_), content_);
  EXPECT_EQ(requests_.size(), (content_.size() + 4) / 5);
  content_.clear();
  fs::path empty = dir_.path / "empty.eml";
  ASSERT_TRUE(export_message(request(), empty.string(), false, runner()));
  EXPECT_TRUE(fs::exists(empty));
  EXPECT_EQ(fs::file_size(empty), 0u);
}

TEST_F(MessageExport, AnExistingFileNeedsForce) {
  content_ = "Subject: new\r\n\r\n";
  std::ofstream(file_) << "keep me";
  requests_.clear();
  auto r = export_message(request(), file_.string(), false, runner());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("exists; add --force to replace it"), std::string::npos) << r.error();
  EXPECT_EQ(read(file_), "keep me");
  EXPECT_TRUE(requests_.empty()) << "nothing asked of starlingd";
  ASSERT_TRUE(export_message(request(), file_.string(), true, runner()));
  EXPECT_EQ(read(file_), content_);
  EXPECT_EQ(entries(), 1u);
}

TEST_F(MessageExport, ARefusalIsTheReplyAndWritesNothing) {
  auto refuse = [&](const mgmt::Request& r) -> Result<mgmt::Reply> {
    requests_.push_back(r);
    return mgmt::failure(mgmt::kExitFailed, "no message 'contoso.com\\3' (get-message lists them)");
  };
  auto r = export_message(request(), file_.string(), false, refuse);
  ASSERT_TRUE(r) << r.error();
  EXPECT_EQ(r->exit_code, mgmt::kExitFailed);
  EXPECT_NE(r->error.find("no message"), std::string::npos);
  EXPECT_EQ(entries(), 0u);
  auto lost = [](const mgmt::Request&) -> Result<mgmt::Reply> { return make_error("lost the connection to starlingd"); };
  EXPECT_FALSE(export_message(request(), file_.string(), false, lost));
  EXPECT_EQ(entries(), 0u);
}

TEST_F(MessageExport, AMessageThatChangesOrMisbehavesLeavesNothing) {
  content_ = std::string(100, 'x');
  piece_ = 40;
  grow_by_ = 1;  // the second piece says another size
  auto r = export_message(request(), file_.string(), false, runner());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("changed while it was exported"), std::string::npos) << r.error();
  EXPECT_EQ(entries(), 0u);

  // A piece beyond the size it announced, an empty piece before the end, a malformed reply.
  for (int kind = 0; kind < 3; ++kind) {
    auto bad = [kind](const mgmt::Request&) -> Result<mgmt::Reply> {
      mgmt::Reply reply;
      if (kind < 2) {
        reply.objects.push_back(Json{{"InternalMessageId", "id"}, {"Size", kind == 0 ? 3 : 10}});
        reply.file_base64 = mgmt::to_base64(kind == 0 ? "four" : "");
      }
      return reply;
    };
    EXPECT_FALSE(export_message(request(), file_.string(), false, bad)) << kind;
    EXPECT_EQ(entries(), 0u) << kind;
  }
}

TEST_F(MessageExport, AnUnwritableDirectoryIsAClearError) {
  auto r = export_message(request(), (dir_.path / "no" / "such" / "dir.eml").string(), false, runner());
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().find("cannot write"), std::string::npos) << r.error();
}

}  // namespace
}  // namespace starling::app
