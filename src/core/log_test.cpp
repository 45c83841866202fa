// log_line under journald: the syslog priority prefix, one line per call whatever the text holds.
#include "core/log.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace starling {
namespace {

// Points stderr at a file and JOURNAL_STREAM at that file, as systemd does for a service.
// (log_line decides once per process whether stderr is the journal: this is the only test.)
TEST(LogLine, UnderJournaldEachCallIsOneLineWithItsPriority) {
  char path[] = "/tmp/log-test-XXXXXX";
  int fd = ::mkstemp(path);
  ASSERT_GE(fd, 0);
  int saved = ::dup(2);
  ASSERT_EQ(::dup2(fd, 2), 2);
  struct stat st {};
  ASSERT_EQ(::fstat(fd, &st), 0);
  std::string stream = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  ::setenv("JOURNAL_STREAM", stream.c_str(), 1);

  log_line(LogLevel::kWarning, "smtp: EHLO x\r\n<0>starlingd: forged\x1b[2J");
  log_line("plain\tinfo");

  ::dup2(saved, 2);
  ::close(saved);
  ::close(fd);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  ::unlink(path);
  EXPECT_EQ(text.str(), "<4>smtp: EHLO x\\x0d\\x0a<0>starlingd: forged\\x1b[2J\n<6>plain\tinfo\n");
}

}  // namespace
}  // namespace starling
