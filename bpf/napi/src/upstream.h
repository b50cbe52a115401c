// The L7 proxy's upstream socket, shared by proxyUpstream() (sock.cc) and the relay
// (http-relay.cc): made in the namespace netnsFd (-1: the current one), carrying SO_MARK `mark`,
// bound with IP_TRANSPARENT to the proxied client's own address and port, its non-blocking
// connect to dst started. When that 4-tuple is taken in the namespace (EADDRINUSE at bind,
// EADDRNOTAVAIL at connect: an earlier upstream in TIME_WAIT), it leaves from the host's address
// instead (transparent = false).
#pragma once
#include <netinet/in.h>
#include <cstdint>

namespace ward {

struct UpstreamSocket {
  int fd = -1;           // -1: failed, `op` and `err` say where and why
  bool transparent = true;
  const char* op = nullptr;
  int err = 0;
};

// Opens the namespace at `path` and the calling thread's own (to return to); false with *op and
// *err set when either cannot be opened (nothing left open then).
bool OpenNamespaces(const char* path, int* netnsFd, int* selfNsFd, const char** op, int* err);

// selfNsFd: the calling thread's own namespace, to return to (needed when netnsFd >= 0).
UpstreamSocket OpenUpstream(int netnsFd, int selfNsFd, uint32_t mark, const sockaddr_in& src, const sockaddr_in& dst);

}  // namespace ward
