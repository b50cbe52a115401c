// A listening TCP socket with IP_TRANSPARENT for the L7 proxy; Node adopts the returned fd
// with net.Server.listen({fd}).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cerrno>
#include "common.h"

namespace ward {

// transparentListen({address, port, backlog?, netns?}) -> fd
static Napi::Value TransparentListen(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (!info[0].IsObject()) ThrowType(env, "transparentListen({address, port})");
  auto o = info[0].As<Napi::Object>();
  std::string addr = o.Get("address").IsString() ? o.Get("address").As<Napi::String>().Utf8Value() : "0.0.0.0";
  uint32_t port = o.Get("port").IsNumber() ? o.Get("port").As<Napi::Number>().Uint32Value() : 0;
  int backlog = o.Get("backlog").IsNumber() ? o.Get("backlog").As<Napi::Number>().Int32Value() : 511;
  std::string netns = o.Get("netns").IsString() ? o.Get("netns").As<Napi::String>().Utf8Value() : "";
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
  else if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) op = "bind";
  else if (listen(fd, backlog) < 0) op = "listen";
  if (op) {
    int e = errno;
    close(fd);
    ThrowErrno(env, op, e);
  }
  return Napi::Number::New(env, fd);
}

// markedSocket({mark, netns?}) -> fd of an unconnected TCP socket with SO_MARK, created in
// netns: the L7 proxy's upstream connections (Node connects it after new net.Socket({fd})).
// The mark tells the datapath the connection comes from the proxy.
static Napi::Value MarkedSocket(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (!info[0].IsObject()) ThrowType(env, "markedSocket({mark, netns?})");
  auto o = info[0].As<Napi::Object>();
  if (!o.Get("mark").IsNumber()) ThrowType(env, "markedSocket: mark must be a number");
  uint32_t mark = o.Get("mark").As<Napi::Number>().Uint32Value();
  std::string netns = o.Get("netns").IsString() ? o.Get("netns").As<Napi::String>().Utf8Value() : "";
  int fd = InNetns(env, netns, [&]() { return socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0); });
  if (fd < 0) ThrowErrno(env, "socket", errno);
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0) {
    int e = errno;
    close(fd);
    ThrowErrno(env, "setsockopt SO_MARK", e);
  }
  return Napi::Number::New(env, fd);
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
  exports.Set("markedSocket", Napi::Function::New(env, MarkedSocket, "markedSocket"));
}

}  // namespace ward
