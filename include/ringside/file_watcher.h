// Watches a few files for replacement or change: inotify on their directories (an atomic
// rename or a Kubernetes ..data symlink swap replaces the file, so a watch on the file
// itself would follow the old inode, but it is always an event in its directory), plus
// a stat() comparison for what inotify cannot see (a symlink target in another
// directory, a directory created later, no inotify at all). Used by the certificate
// rotation agent and by endpoint discovery (--upstream SERVICE=file:PATH). One thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

struct inotify_event;  // <sys/inotify.h>

namespace ringside {

class FileWatcher {
 public:
  // what: names the files in log lines ("certificate files"); poll: the stat() interval;
  // debounce: how long the files must stay quiet before a change is reported.
  FileWatcher(std::string what, std::chrono::milliseconds poll, std::chrono::milliseconds debounce);
  ~FileWatcher();
  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  // Starts watching these paths (replacing any earlier set) and records their signatures.
  void watch(std::vector<std::string> paths);
  bool empty() const { return paths_.empty(); }
  const std::vector<std::string>& paths() const { return paths_; }

  // The inotify descriptor to poll for POLLIN; -1 when inotify is unavailable.
  int fd() const { return inotify_fd_; }
  // After POLLIN on fd(): reads every pending event; true when one was about a watched
  // file (other files in the same directories are ignored).
  bool drain_events();
  // Adds watches on directories that appeared since, and compares every file's stat()
  // signature with the last one seen; true when one changed (and remembers the new ones).
  bool changed_by_stat();

  // The owner's loop (one thread, times from a monotonic clock in ms): poll fd() for
  // POLLIN until at most next_deadline(), then call due(). due() reads the events, runs
  // the stat() comparison every `poll`, and is true once the files changed and then
  // stayed quiet for `debounce` (each new event restarts that wait); it stays true until
  // handled() says the change is being dealt with.
  int64_t next_deadline() const;  // INT64_MAX: nothing watched, nothing pending
  bool due(int64_t now_ms, bool pollin);
  void handled();

 private:
  // What stat() says about a file (through symlinks): a change means "look again".
  struct Signature {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = -1;
    int64_t mtime_ns = 0;
    bool operator==(const Signature&) const = default;
  };
  static Signature signature_of(const std::string& path);
  void add_directory_watches();
  bool concerns_a_watched_file(const ::inotify_event& event) const;

  std::string what_;
  std::chrono::milliseconds poll_;
  std::chrono::milliseconds debounce_;
  int64_t next_stat_ms_ = 0;    // 0: at the first due()
  int64_t debounce_at_ms_ = 0;  // 0: no change seen
  std::vector<std::string> paths_;
  std::vector<Signature> signatures_;
  std::map<std::string, int> watched_dirs_;  // directory -> watch descriptor
  int inotify_fd_ = -1;
};

}  // namespace ringside
