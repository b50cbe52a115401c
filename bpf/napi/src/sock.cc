// A listening TCP socket with IP_TRANSPARENT for the L7 proxy; Node adopts the returned fd
// with net.Server.listen({fd}). Its SO_MARK (`mark`) goes on every packet of the connections
// it accepts (SYN-ACK included): the datapath tells the proxy's answers by it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>
#include "common.h"
#include "upstream.h"

namespace ward {

// transparentListen({address, port, backlog?, netns?, mark?}) -> fd
static Napi::Value TransparentListen(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (!info[0].IsObject()) ThrowType(env, "transparentListen({address, port})");
  auto o = info[0].As<Napi::Object>();
  std::string addr = o.Get("address").IsString() ? o.Get("address").As<Napi::String>().Utf8Value() : "0.0.0.0";
  uint32_t port = o.Get("port").IsNumber() ? o.Get("port").As<Napi::Number>().Uint32Value() : 0;
  int backlog = o.Get("backlog").IsNumber() ? o.Get("backlog").As<Napi::Number>().Int32Value() : 511;
  std::string netns = o.Get("netns").IsString() ? o.Get("netns").As<Napi::String>().Utf8Value() : "";
  uint32_t mark = o.Get("mark").IsNumber() ? o.Get("mark").As<Napi::Number>().Uint32Value() : 0;
  if (port > 65535) ThrowType(env, "port out of range");
  struct sockaddr_in sa = {};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (inet_pton(AF_INET, addr.c_str(), &sa.sin_addr) != 1) ThrowType(env, "address must be an IPv4 address");

  int fd = InNetns(env, netns, [&]() { return socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); });
  if (fd < 0) ThrowErrno(env, "socket", errno);
  int one = 1;
  const char* op = nullptr;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) op = "setsockopt SO_REUSEADDR";
  else if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) < 0) op = "setsockopt IP_TRANSPARENT";
  else if (mark != 0 && setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0) op = "setsockopt SO_MARK";
  else if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) op = "bind";
  else if (listen(fd, backlog) < 0) op = "listen";
  if (op) {
    int e = errno;
    close(fd);
    ThrowErrno(env, op, e);
  }
  return Napi::Number::New(env, fd);
}

static bool ParseAddr(const Napi::Object& o, const char* key, sockaddr_in* sa) {
  auto v = o.Get(key);
  if (!v.IsObject()) return false;
  auto a = v.As<Napi::Object>();
  if (!a.Get("address").IsString() || !a.Get("port").IsNumber()) return false;
  uint32_t port = a.Get("port").As<Napi::Number>().Uint32Value();
  if (port > 65535) return false;
  *sa = {};
  sa->sin_family = AF_INET;
  sa->sin_port = htons(static_cast<uint16_t>(port));
  return inet_pton(AF_INET, a.Get("address").As<Napi::String>().Utf8Value().c_str(), &sa->sin_addr) == 1;
}

// proxyUpstream({mark, netns?, source: {address, port}, destination: {address, port}}) ->
// {fd, transparent}: a TCP socket created in netns, carrying SO_MARK `mark`, bound with
// IP_TRANSPARENT to the proxied client's own address and port, its non-blocking connect to
// destination started (Node adopts it with new net.Socket({fd})). The destination sees the
// client as its peer, and the datapath delivers its answers (same tuple as the client's own
// connection) back here. When that 4-tuple is taken in this namespace (EADDRINUSE at bind,
// EADDRNOTAVAIL at connect, e.g. an earlier upstream in TIME_WAIT), the socket leaves from
// the host's own address instead (transparent = false): answers to it are local anyway.
static Napi::Value ProxyUpstream(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  const char* usage = "proxyUpstream({mark, netns?, source: {address, port}, destination: {address, port}})";
  if (!info[0].IsObject()) ThrowType(env, usage);
  auto o = info[0].As<Napi::Object>();
  if (!o.Get("mark").IsNumber()) ThrowType(env, "proxyUpstream: mark must be a number");
  uint32_t mark = o.Get("mark").As<Napi::Number>().Uint32Value();
  std::string netns = o.Get("netns").IsString() ? o.Get("netns").As<Napi::String>().Utf8Value() : "";
  sockaddr_in src, dst;
  if (!ParseAddr(o, "source", &src)) ThrowType(env, "proxyUpstream: source must be {address: IPv4, port}");
  if (!ParseAddr(o, "destination", &dst)) ThrowType(env, "proxyUpstream: destination must be {address: IPv4, port}");
  int netnsFd = -1, selfFd = -1;
  const char* op = nullptr;
  int err = 0;
  if (!netns.empty() && !OpenNamespaces(netns.c_str(), &netnsFd, &selfFd, &op, &err)) ThrowErrno(env, std::string(op) + " " + netns, err);
  UpstreamSocket u = OpenUpstream(netnsFd, selfFd, mark, src, dst);
  if (netnsFd >= 0) close(netnsFd);
  if (selfFd >= 0) close(selfFd);
  if (u.fd < 0) ThrowErrno(env, u.op, u.err);
  auto out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, u.fd));
  out.Set("transparent", Napi::Boolean::New(env, u.transparent));
  return out;
}

// sendNow(fd, bytes, start, end) -> bytes written, or -errno (-EAGAIN when the socket's buffer
// is full). One non-blocking send(2) on a connected socket Node owns: the L7 proxy writes
// directly while Node's own write queue for it is empty, skipping the stream machinery; the
// caller hands any rest to socket.write. Never throws on a socket error (the caller's fallback
// write reports it through Node).
static Napi::Value SendNow(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsTypedArray() || !info[2].IsNumber() || !info[3].IsNumber()) {
    ThrowType(env, "sendNow(fd, bytes, start, end)");
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  auto bytes = info[1].As<Napi::Uint8Array>();
  int64_t start = info[2].As<Napi::Number>().Int64Value();
  int64_t end = info[3].As<Napi::Number>().Int64Value();
  if (start < 0 || end < start || static_cast<size_t>(end) > bytes.ByteLength()) ThrowType(env, "sendNow: range out of bounds");
  ssize_t n;
  do {
    n = send(fd, bytes.Data() + start, static_cast<size_t>(end - start), MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return Napi::Number::New(env, n < 0 ? -errno : static_cast<double>(n));
}

void InitSock(Napi::Env env, Napi::Object exports) {
  exports.Set("sendNow", Napi::Function::New(env, SendNow, "sendNow"));
  exports.Set("transparentListen", Napi::Function::New(env, TransparentListen, "transparentListen"));
  exports.Set("proxyUpstream", Napi::Function::New(env, ProxyUpstream, "proxyUpstream"));
}

}  // namespace ward
