// FileWatcher's schedule, driven with explicit times: what it asks to be woken for, and
// when a change counts as due (after the debounce, restarted by each new event).
#include "ringside/file_watcher.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <string>

namespace ringside {
namespace {

using std::chrono::milliseconds;

class FileWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ringside-fw-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/endpoints";
    write("a\n");
  }
  void TearDown() override {
    ::unlink(path_.c_str());
    ::rmdir(dir_.c_str());
  }
  void write(const std::string& text) {
    // Replaced by rename, as deployment tools do: an inotify event in the directory and
    // a new inode for stat().
    std::string tmp = path_ + ".tmp";
    std::ofstream(tmp) << text;
    ASSERT_EQ(::rename(tmp.c_str(), path_.c_str()), 0);
  }
  // Whether the watcher's descriptor has events pending (what the owner's poll() sees).
  static bool readable(const FileWatcher& w) {
    if (w.fd() < 0) return false;
    pollfd p{w.fd(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }

  std::string dir_, path_;
};

// A log written next to the watched file (ringside's own stderr redirected there, say)
// is no change: reacting to it re-issued certificates in a loop, each publication's log
// line being the next event.
TEST_F(FileWatcherTest, OtherFilesInTheDirectoryAreNoChange) {
  FileWatcher w("test", milliseconds(1000), milliseconds(150));
  w.watch({path_});
  const std::string log = dir_ + "/ringside.log";
  {
    std::ofstream out(log);
    out << "generation 1 published\n";
  }
  ASSERT_TRUE(readable(w));
  EXPECT_FALSE(w.drain_events());
  EXPECT_FALSE(w.changed_by_stat());
  write("b\n");
  ASSERT_TRUE(readable(w));
  EXPECT_TRUE(w.drain_events());
  ::unlink(log.c_str());
}

TEST_F(FileWatcherTest, NothingWatchedMeansNothingToWakeFor) {
  // The endpoint discovery thread with only dns: sources used to spin on a stat deadline
  // that an empty watcher never moved.
  FileWatcher w("test files", milliseconds(1000), milliseconds(100));
  EXPECT_EQ(w.next_deadline(), INT64_MAX);
  EXPECT_FALSE(w.due(5000, false));
  EXPECT_EQ(w.next_deadline(), INT64_MAX);
}

TEST_F(FileWatcherTest, StatIsScheduledEveryPollInterval) {
  FileWatcher w("test files", milliseconds(1000), milliseconds(100));
  w.watch({path_});
  EXPECT_EQ(w.next_deadline(), 0);  // the first due() runs the stat() comparison
  EXPECT_FALSE(w.due(10'000, false));
  EXPECT_EQ(w.next_deadline(), 11'000);
}

TEST_F(FileWatcherTest, AChangeIsDueAfterTheDebounceRestartedByEachEvent) {
  FileWatcher w("test files", milliseconds(60'000), milliseconds(100));
  w.watch({path_});
  EXPECT_FALSE(w.due(10'000, false));
  write("a\nb\n");
  bool pollin = readable(w);
  if (w.fd() < 0) GTEST_SKIP() << "no inotify here";
  ASSERT_TRUE(pollin);
  EXPECT_FALSE(w.due(10'010, pollin));  // seen, waiting for quiet
  EXPECT_EQ(w.next_deadline(), 10'110);
  write("a\nb\nc\n");  // still being written: the wait starts again
  EXPECT_FALSE(w.due(10'090, readable(w)));
  EXPECT_FALSE(w.due(10'150, false));
  EXPECT_TRUE(w.due(10'190, false));
  EXPECT_TRUE(w.due(10'195, false));  // due until handled
  w.handled();
  EXPECT_FALSE(w.due(10'200, false));
  EXPECT_EQ(w.next_deadline(), 70'000);
}

TEST_F(FileWatcherTest, AChangeOnlyStatSeesIsDueAfterTheDebounceToo) {
  FileWatcher w("test files", milliseconds(1000), milliseconds(100));
  w.watch({path_});
  EXPECT_FALSE(w.due(10'000, false));
  write("z\n");
  // The owner did not look at the inotify descriptor (pollin false): the stat() at the
  // next interval finds the new inode.
  EXPECT_FALSE(w.due(10'500, false));
  EXPECT_FALSE(w.due(11'000, false));
  EXPECT_EQ(w.next_deadline(), 11'100);
  EXPECT_TRUE(w.due(11'100, false));
  w.handled();
  EXPECT_FALSE(w.due(11'200, false));
}

}  // namespace
}  // namespace ringside
