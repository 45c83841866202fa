#include "app/message_export.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "mgmt/queue_commands.hpp"
#include "mgmt/values.hpp"

namespace starling::app {
namespace {

// A temporary file beside the target (mode 0600), removed unless it was given its name.
class PartialFile {
 public:
  explicit PartialFile(const std::string& target) : path_(target + ".XXXXXX") {
    fd_ = ::mkostemp(path_.data(), O_CLOEXEC);
    if (fd_ < 0) path_.clear();
  }
  ~PartialFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  PartialFile(const PartialFile&) = delete;
  PartialFile& operator=(const PartialFile&) = delete;

  bool open() const { return fd_ >= 0; }

  bool write(const std::string& bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  // Gives the file the target's name: atomically, and without replacing a file unless `replace`
  // (another writer may have created one since the check).
  Result<void> finish(const std::string& target, bool replace) {
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return make_error("cannot write " + target + ": " + std::strerror(errno));
    int r = ::renameat2(AT_FDCWD, path_.c_str(), AT_FDCWD, target.c_str(), replace ? 0 : RENAME_NOREPLACE);
    if (r == 0) {
      path_.clear();  // renamed: nothing left to remove
      return {};
    }
    if (errno == EINVAL && !replace) {  // a file system without RENAME_NOREPLACE: the link is the name,
      r = ::link(path_.c_str(), target.c_str());  // and the destructor removes the temporary one
    }
    if (r != 0) {
      return make_error(errno == EEXIST ? target + " exists; add --force to replace it"
                                        : "cannot write " + target + ": " + std::strerror(errno));
    }
    return {};
  }

 private:
  std::string path_;
  int fd_ = -1;
};

struct Piece {
  std::string bytes;
  uint64_t total = 0;
  std::string internal_id;
};

Result<Piece> read_piece(const mgmt::Reply& reply) {
  const mgmt::Json& objects = reply.objects;
  if (objects.size() != 1 || !objects[0].contains("Size") || !objects[0]["Size"].is_number_unsigned() ||
      !objects[0].contains("InternalMessageId") || !objects[0]["InternalMessageId"].is_string()) {
    return make_error("malformed export reply from starlingd");
  }
  auto bytes = mgmt::from_base64(reply.file_base64);
  if (!bytes) return std::move(bytes).take_error();
  return Piece{std::move(*bytes), objects[0]["Size"].get<uint64_t>(), objects[0]["InternalMessageId"].get<std::string>()};
}

}  // namespace

Result<mgmt::Reply> export_message(mgmt::Request request, const std::string& path, bool force, const RunRequest& run) {
  struct stat st{};
  if (!force && ::lstat(path.c_str(), &st) == 0) return make_error(path + " exists; add --force to replace it");
  PartialFile file(path);
  if (!file.open()) return make_error("cannot write " + path + ": " + std::strerror(errno));
  mgmt::Reply first;
  uint64_t offset = 0;
  Piece expected;
  while (true) {
    auto reply = run(request);
    if (!reply) return std::move(reply).take_error();
    if (reply->exit_code != mgmt::kExitOk) return reply;
    auto piece = read_piece(*reply);
    if (!piece) return std::move(piece).take_error();
    if (offset == 0) {
      first = *reply;
      expected = *piece;
      // The rest by InternalMessageId: N of QUEUE\N names another message after a restart.
      request.args["identity"] = piece->internal_id;
    } else if (piece->total != expected.total || piece->internal_id != expected.internal_id) {
      return make_error("the message changed while it was exported; nothing was written");
    }
    if (offset + piece->bytes.size() > piece->total || (piece->bytes.empty() && offset < piece->total)) {
      return make_error("starlingd sent a piece that does not fit the message; nothing was written");
    }
    if (!file.write(piece->bytes)) return make_error("cannot write " + path + ": " + std::strerror(errno));
    offset += piece->bytes.size();
    if (offset >= piece->total) break;
    request.args[std::string(mgmt::kExportOffsetKey)] = std::to_string(offset);
  }
  if (auto f = file.finish(path, force); !f) return std::move(f).take_error();
  const mgmt::Json& shown = first.objects[0];
  std::string identity = shown.contains("Identity") && shown["Identity"].is_string()
                             ? shown["Identity"].get<std::string>()
                             : expected.internal_id;
  first.objects = mgmt::Json::array();
  first.file_base64.clear();
  first.messages.push_back("Exported message " + identity + " (" + expected.internal_id + ", " +
                           std::to_string(offset) + " octets) to " + path + ".");
  return first;
}

}  // namespace starling::app
