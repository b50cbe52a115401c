#pragma once
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <cstdio>

namespace ward {

template <typename F>
auto InNetns(Napi::Env env, const std::string& netns, F f) -> decltype(f()) {
  if (netns.empty()) return f();
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) ThrowErrno(env, "open /proc/thread-self/ns/net", errno);
  int target = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    int e = errno;
    close(self);
    ThrowErrno(env, "open " + netns, e);
  }
  if (setns(target, CLONE_NEWNET) < 0) {
    int e = errno;
    close(self);
    close(target);
    ThrowErrno(env, "setns " + netns, e);
  }
  close(target);
  struct Restore {
    int fd;
    ~Restore() {
      // Staying in the wrong namespace would silently misdirect every later call: abort.
      if (setns(fd, CLONE_NEWNET) < 0) {
        perror("ebpf-napi: cannot return to the original network namespace");
        abort();
      }
      close(fd);
    }
  } restore{self};
  return f();
}

}  // namespace ward
