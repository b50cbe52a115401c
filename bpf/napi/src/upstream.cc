// See upstream.h.
#include "upstream.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace ward {

namespace {

// One attempt: socket (in the namespace), SO_MARK, then with src: SO_REUSEADDR, IP_TRANSPARENT,
// bind(src); then connect(dst).
int Attempt(int netnsFd, int selfNsFd, uint32_t mark, const sockaddr_in* src, const sockaddr_in& dst, const char** op, int* err) {
  if (netnsFd >= 0 && setns(netnsFd, CLONE_NEWNET) < 0) {
    *op = "setns";
    *err = errno;
    return -1;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int socketErr = errno;
  if (netnsFd >= 0 && setns(selfNsFd, CLONE_NEWNET) < 0) {
    // Staying in the wrong namespace would silently misdirect every later call.
    perror("ebpf-napi: cannot return to the original network namespace");
    abort();
  }
  if (fd < 0) {
    *op = "socket";
    *err = socketErr;
    return -1;
  }
  int one = 1;
  *op = nullptr;
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0) *op = "setsockopt SO_MARK";
  else if (src && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) *op = "setsockopt SO_REUSEADDR";
  else if (src && setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) < 0) *op = "setsockopt IP_TRANSPARENT";
  else if (src && bind(fd, reinterpret_cast<const sockaddr*>(src), sizeof(*src)) < 0) *op = "bind";
  else if (connect(fd, reinterpret_cast<const sockaddr*>(&dst), sizeof(dst)) < 0 && errno != EINPROGRESS) *op = "connect";
  if (*op == nullptr) return fd;
  *err = errno;
  close(fd);
  return -1;
}

}  // namespace

bool OpenNamespaces(const char* path, int* netnsFd, int* selfNsFd, const char** op, int* err) {
  *netnsFd = open(path, O_RDONLY | O_CLOEXEC);
  if (*netnsFd < 0) {
    *op = "open";
    *err = errno;
    return false;
  }
  *selfNsFd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (*selfNsFd < 0) {
    *op = "open /proc/thread-self/ns/net";
    *err = errno;
    close(*netnsFd);
    *netnsFd = -1;
    return false;
  }
  return true;
}

UpstreamSocket OpenUpstream(int netnsFd, int selfNsFd, uint32_t mark, const sockaddr_in& src, const sockaddr_in& dst) {
  UpstreamSocket u;
  u.fd = Attempt(netnsFd, selfNsFd, mark, &src, dst, &u.op, &u.err);
  if (u.fd < 0 && (u.err == EADDRINUSE || u.err == EADDRNOTAVAIL)) {
    u.transparent = false;
    u.fd = Attempt(netnsFd, selfNsFd, mark, nullptr, dst, &u.op, &u.err);
  }
  return u;
}

}  // namespace ward
