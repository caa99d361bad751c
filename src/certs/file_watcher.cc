#include "ringside/file_watcher.h"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "ringside/log.h"

namespace ringside {
namespace {

std::string directory_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

FileWatcher::FileWatcher(std::string what, std::chrono::milliseconds poll,
                         std::chrono::milliseconds debounce)
    : what_(std::move(what)), poll_(poll), debounce_(debounce) {}

FileWatcher::~FileWatcher() {
  if (inotify_fd_ >= 0) ::close(inotify_fd_);
}

FileWatcher::Signature FileWatcher::signature_of(const std::string& path) {
  struct stat st;
  Signature sig;
  if (::stat(path.c_str(), &st) == 0) {
    sig.dev = st.st_dev;
    sig.ino = st.st_ino;
    sig.size = st.st_size;
    sig.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  }
  return sig;
}

void FileWatcher::watch(std::vector<std::string> paths) {
  paths_ = std::move(paths);
  signatures_.clear();
  for (const auto& path : paths_) signatures_.push_back(signature_of(path));
  if (inotify_fd_ >= 0) {
    ::close(inotify_fd_);
    inotify_fd_ = -1;
    watched_dirs_.clear();
  }
  if (paths_.empty()) return;
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) {
    RS_WARN("inotify unavailable (%s): %s are checked every %lld ms instead", std::strerror(errno),
            what_.c_str(), static_cast<long long>(poll_.count()));
    return;
  }
  add_directory_watches();
}

void FileWatcher::add_directory_watches() {
  if (inotify_fd_ < 0) return;
  for (const auto& path : paths_) {
    std::string dir = directory_of(path);
    if (watched_dirs_.count(dir) != 0) continue;
    int wd =
        ::inotify_add_watch(inotify_fd_, dir.c_str(),
                            IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |
                                IN_ATTRIB | IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF);
    if (wd < 0) {
      RS_WARN("cannot watch %s (%s): relying on the %lld ms check", dir.c_str(),
              std::strerror(errno), static_cast<long long>(poll_.count()));
      continue;
    }
    watched_dirs_[dir] = wd;
  }
}

// Whether an event in a watched directory is about one of the watched files: its name,
// a Kubernetes ..data / ..2024_... swap (names starting with ".."), or the directory
// itself. Anything else in the directory (a log file written next to the certificates,
// an editor's swap file) is no reason to reload: reacting to it could even feed itself.
bool FileWatcher::concerns_a_watched_file(const inotify_event& event) const {
  if (event.len == 0) return true;
  const std::string_view name(event.name);
  if (name.rfind("..", 0) == 0) return true;
  for (const auto& path : paths_) {
    const size_t slash = path.rfind('/');
    const std::string_view base = slash == std::string::npos
                                      ? std::string_view(path)
                                      : std::string_view(path).substr(slash + 1);
    if (name == base) return true;
  }
  return false;
}

// A directory that went away loses its watch; it is added again on the next stat check.
bool FileWatcher::drain_events() {
  if (inotify_fd_ < 0) return false;
  bool any = false;
  alignas(inotify_event) char buf[4096];
  while (true) {
    ssize_t n = ::read(inotify_fd_, buf, sizeof(buf));
    if (n <= 0) break;
    for (char* p = buf; p < buf + n;) {
      auto* event = reinterpret_cast<inotify_event*>(p);
      any = any || concerns_a_watched_file(*event);
      if (event->mask & IN_IGNORED) {
        for (auto it = watched_dirs_.begin(); it != watched_dirs_.end(); ++it) {
          if (it->second == event->wd) {
            watched_dirs_.erase(it);
            break;
          }
        }
      }
      p += sizeof(inotify_event) + event->len;
    }
  }
  return any;
}

bool FileWatcher::changed_by_stat() {
  add_directory_watches();
  bool changed = false;
  for (size_t i = 0; i < paths_.size(); ++i) {
    Signature sig = signature_of(paths_[i]);
    if (!(sig == signatures_[i])) {
      signatures_[i] = sig;
      changed = true;
    }
  }
  return changed;
}

int64_t FileWatcher::next_deadline() const {
  int64_t at = empty() ? INT64_MAX : next_stat_ms_;
  if (debounce_at_ms_ != 0) at = std::min(at, debounce_at_ms_);
  return at;
}

bool FileWatcher::due(int64_t now_ms, bool pollin) {
  if (pollin && drain_events()) debounce_at_ms_ = now_ms + debounce_.count();
  if (!empty() && now_ms >= next_stat_ms_) {
    next_stat_ms_ = now_ms + poll_.count();
    if (changed_by_stat() && debounce_at_ms_ == 0) debounce_at_ms_ = now_ms + debounce_.count();
  }
  return debounce_at_ms_ != 0 && now_ms >= debounce_at_ms_;
}

void FileWatcher::handled() {
  debounce_at_ms_ = 0;
  changed_by_stat();  // the change is being handled: forget its signature
}

}  // namespace ringside
