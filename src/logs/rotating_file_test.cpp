// RotatingFile with tiny limits: rotation by size and by UTC day, pruning by age, total size and
// after a change of limits, resuming after a restart, and dropping (not waiting) when full.
#include "logs/rotating_file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <sstream>

#include "testing/temp_dir.hpp"

namespace starling::logs {
namespace {
namespace fs = std::filesystem;

constexpr int64_t kDayUs = 86'400'000'000;
constexpr int64_t kStart = 1'796'083'200'000'000;  // 2026-12-01T00:00:00Z

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct RotatingFileTest : ::testing::Test {
  testing::TempDir dir{"rotating-file-test"};
  std::atomic<int64_t> clock{kStart};

  RotatingFileOptions options(RotationLimits limits) {
    RotatingFileOptions o;
    o.directory = dir.path / "logs";
    o.prefix = "TEST";
    o.header = "#header\n";
    o.limits = limits;
    o.now_us = [this] { return clock.load(); };
    return o;
  }
  std::unique_ptr<RotatingFile> open(RotationLimits limits) {
    auto file = RotatingFile::open(options(limits));
    EXPECT_TRUE(file) << file.error();
    return std::move(file).value();
  }
  std::vector<fs::path> files() { return list_log_files(dir.path / "logs", "TEST"); }
  uint64_t total_size() {
    uint64_t total = 0;
    for (const fs::path& f : files()) total += fs::file_size(f);
    return total;
  }
};

// "e000\n" ... : 10 octets each.
std::string entry(int i) {
  std::string n = std::to_string(i);
  return "entry" + std::string(4 - n.size(), '0') + n + "\n";
}

TEST_F(RotatingFileTest, WritesEntriesInOrderAfterTheHeaderInAFileNamedForItsTime) {
  auto file = open({});
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(file->append(entry(i)));
  ASSERT_TRUE(file->flush());
  ASSERT_EQ(files().size(), 1u);
  EXPECT_EQ(files()[0].filename(), "TEST20261201-000000-000000.log");
  EXPECT_EQ(read(files()[0]), "#header\n" + entry(0) + entry(1) + entry(2));
  struct stat st {};
  ASSERT_EQ(::stat(files()[0].c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST_F(RotatingFileTest, StartsANewFileWhenTheCurrentOneWouldPassMaxFileSize) {
  auto file = open({.max_file_size = 30, .max_directory_size = 1 << 20});
  for (int i = 0; i < 7; ++i) {
    file->append(entry(i));
    clock += 1;
  }
  ASSERT_TRUE(file->flush());
  std::vector<fs::path> all = files();
  ASSERT_EQ(all.size(), 4u);  // header + 2 entries per file = 28 octets
  std::string joined;
  for (const fs::path& f : all) {
    std::string text = read(f);
    EXPECT_LE(text.size(), 30u);
    EXPECT_TRUE(text.starts_with("#header\n"));
    joined += text.substr(8);
  }
  std::string expected;
  for (int i = 0; i < 7; ++i) expected += entry(i);
  EXPECT_EQ(joined, expected);
}

TEST_F(RotatingFileTest, AnEntryLargerThanMaxFileSizeStillGetsAFile) {
  auto file = open({.max_file_size = 5, .max_directory_size = 1 << 20});
  file->append(entry(0));
  file->append(entry(1));
  ASSERT_TRUE(file->flush());
  ASSERT_EQ(files().size(), 2u);
  EXPECT_EQ(read(files()[1]), "#header\n" + entry(1));
}

TEST_F(RotatingFileTest, StartsANewFileWithEachUtcDay) {
  auto file = open({});
  clock = kStart + kDayUs - 1;
  file->append(entry(0));
  ASSERT_TRUE(file->flush());
  clock = kStart + kDayUs;
  file->append(entry(1));
  ASSERT_TRUE(file->flush());
  ASSERT_EQ(files().size(), 2u);
  EXPECT_EQ(files()[0].filename(), "TEST20261201-235959-999999.log");
  EXPECT_EQ(files()[1].filename(), "TEST20261202-000000-000000.log");
}

TEST_F(RotatingFileTest, RemovesTheOldestFilesWhileTheDirectoryIsOverMaxDirectorySize) {
  auto file = open({.max_file_size = 18, .max_directory_size = 60});
  for (int i = 0; i < 20; ++i) {
    file->append(entry(i));
    clock += 1;
    ASSERT_TRUE(file->flush());
  }
  EXPECT_LE(total_size(), 60u);
  std::vector<fs::path> all = files();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(read(all.back()), "#header\n" + entry(19));
  EXPECT_EQ(read(all.front()), "#header\n" + entry(17));
}

TEST_F(RotatingFileTest, RemovesFilesOlderThanMaxAgeButNeverTheCurrentOne) {
  auto file = open({.max_file_size = 1 << 20, .max_directory_size = 1 << 20,
                    .max_age = std::chrono::hours(24 * 30)});
  file->append(entry(0));
  ASSERT_TRUE(file->flush());
  clock += kDayUs;
  file->append(entry(1));
  ASSERT_TRUE(file->flush());
  ASSERT_EQ(files().size(), 2u);
  clock += 40 * kDayUs;  // both old now; a change of limits prunes at once
  file->set_limits({.max_file_size = 1 << 20, .max_directory_size = 1 << 20,
                    .max_age = std::chrono::hours(24)});
  ASSERT_TRUE(file->flush());
  ASSERT_EQ(files().size(), 1u);
  EXPECT_EQ(read(files()[0]), "#header\n" + entry(1));
}

TEST_F(RotatingFileTest, SmallerLimitsApplyWhileRunning) {
  auto file = open({.max_file_size = 18, .max_directory_size = 1 << 20});
  for (int i = 0; i < 10; ++i) {
    file->append(entry(i));
    clock += 1;
  }
  ASSERT_TRUE(file->flush());
  ASSERT_EQ(files().size(), 10u);
  file->set_limits({.max_file_size = 18, .max_directory_size = 40});
  ASSERT_TRUE(file->flush());
  EXPECT_EQ(files().size(), 2u);
  EXPECT_LE(total_size(), 40u);
}

TEST_F(RotatingFileTest, AfterARestartGoesOnInTodaysFileAndPrunesWithTheNewLimits) {
  {
    auto file = open({.max_file_size = 18, .max_directory_size = 1 << 20});
    for (int i = 0; i < 4; ++i) {
      file->append(entry(i));
      clock += 1;
    }
  }  // the destructor writes what is queued
  ASSERT_EQ(files().size(), 4u);
  auto file = open({.max_file_size = 100, .max_directory_size = 50});
  file->append(entry(4));
  ASSERT_TRUE(file->flush());
  std::vector<fs::path> all = files();
  ASSERT_EQ(all.size(), 2u);  // 18 + 28 octets
  EXPECT_EQ(read(all.front()), "#header\n" + entry(2));
  EXPECT_EQ(read(all.back()), "#header\n" + entry(3) + entry(4));
}

TEST_F(RotatingFileTest, DropsAndCountsWhatDoesNotFitTheQueueInsteadOfWaiting) {
  RotatingFileOptions o = options({});
  o.max_queued_bytes = 100;
  int reported = 0;
  o.on_dropped = [&] { ++reported; };
  auto file = RotatingFile::open(o);
  ASSERT_TRUE(file);
  EXPECT_FALSE((*file)->append(std::string(200, 'x') + "\n"));
  EXPECT_TRUE((*file)->append(entry(1)));
  ASSERT_TRUE((*file)->flush());
  EXPECT_EQ((*file)->dropped(), 1u);
  EXPECT_EQ(reported, 1);
  EXPECT_EQ(read(files()[0]), "#header\n" + entry(1));
}

TEST_F(RotatingFileTest, AnUnwritableDirectoryDropsEntriesWithoutFailingTheCaller) {
  auto file = open({});
  fs::remove_all(dir.path / "logs");
  std::ofstream(dir.path / "logs") << "a file now";  // where the directory was
  EXPECT_TRUE(file->append(entry(0)));
  clock += kDayUs;  // a new day: the writer must create a file, and cannot
  EXPECT_TRUE(file->append(entry(1)));
  ASSERT_TRUE(file->flush());
  EXPECT_GE(file->dropped(), 1u);
}

TEST_F(RotatingFileTest, OpenRefusesAPathThatIsNotADirectory) {
  std::ofstream(dir.path / "plain") << "x";
  RotatingFileOptions o = options({});
  o.directory = dir.path / "plain";
  EXPECT_FALSE(RotatingFile::open(o));
}

TEST_F(RotatingFileTest, ListsOnlyItsOwnFilesOldestFirst) {
  fs::create_directories(dir.path / "logs");
  for (const char* name : {"TEST20261202-000000-000000.log", "TEST20261201-000000-000000.log",
                           "TEST-notes.log", "OTHER20261201-000000-000000.log",
                           "TEST20261301-000000-00000x.log"}) {
    std::ofstream(dir.path / "logs" / name) << "x";
  }
  std::vector<fs::path> all = files();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].filename(), "TEST20261201-000000-000000.log");
}

}  // namespace
}  // namespace starling::logs
