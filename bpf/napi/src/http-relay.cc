// See http-relay.h. This logic was TypeScript on net.Socket until the V8 and libuv work per
// request (about 5 us) proved to cost more than the HTTP work itself (docs/L7.md).
#include "http-relay.h"
#include "upstream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ward {

namespace {

constexpr size_t kReadBytes = 64 * 1024;
constexpr int kBatch = 64;
enum Side : uint64_t { kClient = 0, kUpstream = 1, kListener = 2 };

uint64_t Key(uint64_t id, uint32_t gen, Side side) { return id << 8 | (static_cast<uint64_t>(gen) & 0x3f) << 2 | side; }

const char* StatusText(int status) {
  switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
  }
}

// The answers the proxy gives itself.
std::string LocalResponse(int status, const std::string& body, bool close) {
  return "HTTP/1.1 " + std::to_string(status) + " " + StatusText(status) + "\r\ncontent-type: text/plain\r\ncontent-length: " + std::to_string(body.size()) +
         "\r\n" + (close ? "connection: close\r\n" : "") + "\r\n" + body;
}

const std::string& Denied(bool close) {
  static const std::string keep = LocalResponse(403, "Access denied\r\n", false);
  static const std::string closing = LocalResponse(403, "Access denied\r\n", true);
  return close ? closing : keep;
}

const std::string& UpgradeRefused() {
  static const std::string r = LocalResponse(501, "upgrade and CONNECT are not supported\r\n", true);
  return r;
}

std::string ErrnoText(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : "E" + std::to_string(err);
}

std::string AddrText(const sockaddr_in& a) {
  char b[INET_ADDRSTRLEN] = "";
  inet_ntop(AF_INET, &a.sin_addr, b, sizeof(b));
  return b;
}

uint64_t U64(const Napi::Object& o, const char* key, uint64_t dflt) {
  auto v = o.Get(key);
  return v.IsNumber() ? static_cast<uint64_t>(v.As<Napi::Number>().Int64Value()) : dflt;
}

}  // namespace

Napi::Function HttpRelay::Define(Napi::Env env) {
  return DefineClass(env, "HttpRelay",
                     {InstanceMethod("listen", &HttpRelay::Listen), InstanceMethod("unlisten", &HttpRelay::Unlisten),
                      InstanceMethod("stats", &HttpRelay::Stats),
                      InstanceMethod("close", &HttpRelay::Close), InstanceMethod("invalidate", &HttpRelay::Invalidate),
                      InstanceMethod("watch", &HttpRelay::Watch)});
}

// new HttpRelay({netns?, limits?, onAccept, decide, onInvalid, onClose, onError})
HttpRelay::HttpRelay(const Napi::CallbackInfo& info) : Napi::ObjectWrap<HttpRelay>(info), env_(info.Env()) {
  auto env = info.Env();
  const char* usage = "new HttpRelay({netns?, limits?, onAccept, decide, onInvalid, onClose, onError})";
  if (!info[0].IsObject()) ThrowType(env, usage);
  auto o = info[0].As<Napi::Object>();
  for (const char* f : {"onAccept", "decide", "onInvalid", "onClose", "onError"})
    if (!o.Get(f).IsFunction()) ThrowType(env, std::string("HttpRelay: ") + f + " must be a function");
  onAccept_ = Napi::Persistent(o.Get("onAccept").As<Napi::Function>());
  decide_ = Napi::Persistent(o.Get("decide").As<Napi::Function>());
  onInvalid_ = Napi::Persistent(o.Get("onInvalid").As<Napi::Function>());
  onClose_ = Napi::Persistent(o.Get("onClose").As<Napi::Function>());
  onError_ = Napi::Persistent(o.Get("onError").As<Napi::Function>());
  if (o.Get("limits").IsObject()) {
    auto l = o.Get("limits").As<Napi::Object>();
    limits_.maxHeadBytes = U64(l, "maxHeadBytes", limits_.maxHeadBytes);
    limits_.maxHeaders = U64(l, "maxHeaders", limits_.maxHeaders);
    limits_.headTimeoutMs = U64(l, "headTimeoutMs", limits_.headTimeoutMs);
    limits_.idleTimeoutMs = U64(l, "idleTimeoutMs", limits_.idleTimeoutMs);
    limits_.upstreamTimeoutMs = U64(l, "upstreamTimeoutMs", limits_.upstreamTimeoutMs);
    limits_.maxPipeline = U64(l, "maxPipeline", limits_.maxPipeline);
    limits_.maxConnectionsPerListener = U64(l, "maxConnectionsPerListener", limits_.maxConnectionsPerListener);
  }
  std::string netns = o.Get("netns").IsString() ? o.Get("netns").As<Napi::String>().Utf8Value() : "";
  const char* op = nullptr;
  int err = 0;
  if (!netns.empty() && !OpenNamespaces(netns.c_str(), &netnsFd_, &selfNsFd_, &op, &err)) ThrowErrno(env, std::string(op) + " " + netns, err);
  // A constructor that throws leaves no destructor to run: what it opened is closed here.
  auto fail = [&](const char* what, int e) {
    if (efd_ >= 0) close(efd_);
    if (netnsFd_ >= 0) close(netnsFd_);
    if (selfNsFd_ >= 0) close(selfNsFd_);
    ThrowErrno(env, what, e);
  };
  readBuf_.resize(kReadBytes);
  efd_ = epoll_create1(EPOLL_CLOEXEC);
  if (efd_ < 0) fail("epoll_create1", errno);
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  poll_ = new uv_poll_t;
  poll_->data = nullptr;
  err = uv_poll_init(loop, poll_, efd_);
  if (err) {
    delete poll_;
    poll_ = nullptr;
    fail("uv_poll_init", -err);
  }
  err = uv_poll_start(poll_, UV_READABLE, &HttpRelay::OnPoll);
  if (err) {
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
    fail("uv_poll_start", -err);
  }
  poll_->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
  timer_ = new uv_timer_t;
  timer_->data = this;
  uv_timer_init(loop, timer_);
  uint64_t tickMs = std::max<uint64_t>(10, std::min({limits_.headTimeoutMs, limits_.idleTimeoutMs, limits_.upstreamTimeoutMs}) / 4);
  uv_timer_start(timer_, &HttpRelay::OnTick, tickMs, tickMs);
  uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
  async_ = std::make_unique<Napi::AsyncContext>(env, "ward:l7relay");
  Ref();  // alive while open; close() releases it
}

HttpRelay::~HttpRelay() { Stop(); }

uint64_t HttpRelay::Now() const { return poll_ ? uv_now(poll_->loop) : 0; }

// Nothing to accept and no connection: the relay does not keep the loop alive.
void HttpRelay::UnrefIfIdle() {
  if (listeners_.empty() && conns_.empty() && poll_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
}

// ---- JS surface

// listen(fd, tag 0 | 1, upstream?: {address, port}) -> listener id: the relay accepts on fd (a
// listening socket) and owns it. With `upstream`, its connections go there instead of to their
// original destination.
Napi::Value HttpRelay::Listen(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (stopped_) ThrowType(env, "HttpRelay is closed");
  int fd = ArgFd(info, 0);
  // The fd is the relay's from here: closed if it cannot be used.
  auto refuse = [&](const std::string& why, int e) {
    close(fd);
    if (e == 0) ThrowType(env, why);
    ThrowErrno(env, why, e);
  };
  uint32_t tag = info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
  if (tag > 1) refuse("HttpRelay.listen: tag must be 0 or 1", 0);
  Listener l{fd, tag};
  if (info[2].IsObject()) {
    auto u = info[2].As<Napi::Object>();
    l.fixed = true;
    l.upstream.sin_family = AF_INET;
    uint32_t port = u.Get("port").IsNumber() ? u.Get("port").As<Napi::Number>().Uint32Value() : 0;
    std::string addr = u.Get("address").IsString() ? u.Get("address").As<Napi::String>().Utf8Value() : "";
    if (port == 0 || port > 65535 || inet_pton(AF_INET, addr.c_str(), &l.upstream.sin_addr) != 1)
      refuse("HttpRelay.listen: upstream must be {address: IPv4, port: 1-65535}", 0);
    l.upstream.sin_port = htons(static_cast<uint16_t>(port));
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) refuse("fcntl O_NONBLOCK", errno);
  uint32_t id = nextListener_++;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = Key(id, 0, kListener);
  if (epoll_ctl(efd_, EPOLL_CTL_ADD, fd, &ev) < 0) refuse("epoll_ctl ADD listener", errno);
  listeners_[id] = l;
  uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
  return Napi::Number::New(env, id);
}

// unlisten(id): closes that listener; its connections stay.
Napi::Value HttpRelay::Unlisten(const Napi::CallbackInfo& info) {
  uint32_t id = info[0].As<Napi::Number>().Uint32Value();
  auto it = listeners_.find(id);
  if (it != listeners_.end()) {
    close(it->second.fd);
    it->second.fd = -1;
    if (it->second.open == 0) listeners_.erase(it);
  }
  UnrefIfIdle();
  return info.Env().Undefined();
}

Napi::Value HttpRelay::Stats(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("connections", Napi::Number::New(env, counters_.connections));
  o.Set("activeConnections", Napi::Number::New(env, static_cast<double>(conns_.size())));
  o.Set("refusedConnections", Napi::Number::New(env, counters_.refused));
  o.Set("upstreamErrors", Napi::Number::New(env, counters_.upstreamErrors));
  o.Set("upstreamsFromHost", Napi::Number::New(env, counters_.upstreamsFromHost));
  auto cached = Napi::Array::New(env, 4);
  for (uint32_t i = 0; i < 4; i++) cached.Set(i, Napi::Number::New(env, cachedVerdicts_[i / 2][i % 2]));
  o.Set("cachedVerdicts", cached);
  return o;
}

// invalidate(): the policy changed; cached verdicts are not used any more.
Napi::Value HttpRelay::Invalidate(const Napi::CallbackInfo& info) {
  epoch_++;
  return info.Env().Undefined();
}

// watch(on): while on, every request is decided by JS (its event is wanted), none from the cache.
Napi::Value HttpRelay::Watch(const Napi::CallbackInfo& info) {
  watching_ = info[0].ToBoolean().Value();
  return info.Env().Undefined();
}

Napi::Value HttpRelay::Close(const Napi::CallbackInfo& info) {
  Stop();
  return info.Env().Undefined();
}

// Idempotent: every connection and listener closed, handles released; no JS called.
void HttpRelay::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& [id, c] : conns_) {
    c->dead = c->closed = true;
    close(c->cfd);
    if (c->ufd >= 0) close(c->ufd);
    c->ufd = -1;
    // A connection whose work is on the stack (close() from a callback) is freed after it.
    if (dispatching_ > 0) graveyard_.push_back(std::move(c));
  }
  conns_.clear();
  if (dispatching_ == 0) graveyard_.clear();
  for (auto& [id, l] : listeners_)
    if (l.fd >= 0) close(l.fd);
  listeners_.clear();
  if (poll_) {
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }
  if (timer_) {
    uv_timer_stop(timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    timer_ = nullptr;
  }
  if (efd_ >= 0) close(efd_);
  efd_ = -1;
  if (netnsFd_ >= 0) close(netnsFd_);
  if (selfNsFd_ >= 0) close(selfNsFd_);
  netnsFd_ = selfNsFd_ = -1;
  Unref();
}

void HttpRelay::CallJs(const Napi::FunctionReference& f, const std::initializer_list<napi_value>& args, Napi::Value* result) {
  try {
    auto r = f.Call(args);
    if (result) *result = r;
  } catch (const Napi::Error& e) {
    // Reported once the loop turn's work is done (as an uncaught exception, like any callback's).
    if (exception_.IsEmpty()) exception_ = Napi::Persistent(e.Value().As<Napi::Value>());
  }
}

// ---- loop

void HttpRelay::OnPoll(uv_poll_t* h, int status, int events) {
  auto* self = static_cast<HttpRelay*>(h->data);
  if (self && !self->stopped_) self->Drain();
}

void HttpRelay::OnTick(uv_timer_t* t) {
  auto* self = static_cast<HttpRelay*>(t->data);
  if (self && !self->stopped_) self->Tick();
}

// Runs one loop turn's connection work: in one callback scope (JS's microtasks and next ticks
// run when it closes, as after any Node callback), then re-parses what waited, frees what was
// killed, and reports a JS exception from any callback as uncaught.
template <typename F>
void HttpRelay::Turn(F work) {
  Napi::HandleScope scope(env_);
  {
    Napi::CallbackScope cb(env_, *async_);
    dispatching_++;
    work();
    AfterEvents();
    dispatching_--;
    if (dispatching_ == 0) graveyard_.clear();
  }
  if (!exception_.IsEmpty()) {
    napi_value e = exception_.Value();
    exception_.Reset();
    napi_fatal_exception(env_, e);
  }
}

void HttpRelay::Drain() {
  Turn([this] {
    epoll_event evs[kBatch];
    int n = epoll_wait(efd_, evs, kBatch, 0);
    for (int i = 0; i < n && !stopped_; i++) Dispatch(evs[i].data.u64, evs[i].events);
  });
}

void HttpRelay::Tick() {
  Turn([this] {
    uint64_t now = Now();
    std::vector<Conn*> all;
    all.reserve(conns_.size());
    for (auto& [id, c] : conns_) all.push_back(c.get());
    for (Conn* c : all) {
      if (c->dead) continue;
      if (c->closed) {
        // Waiting for the client's FIN after ours: not forever.
        if (now - c->clientActive >= limits_.idleTimeoutMs) Kill(c);
        continue;
      }
      if (c->headStart != 0 && now - c->headStart >= limits_.headTimeoutMs) {
        Reject(c, 408, "request head not complete in time");
        continue;
      }
      if (c->queue.empty()) {
        if (now - c->clientActive >= limits_.idleTimeoutMs) Kill(c);
        continue;
      }
      if (c->queue.front().local || now - c->upActive < limits_.upstreamTimeoutMs) continue;
      UpstreamFailed(c, 504, "upstream timed out");
    }
  });
}

void HttpRelay::AfterEvents() {
  // Requests left unparsed while paused (pipeline full, upstream full): parsed again now.
  while (!reprocess_.empty() && !stopped_) {
    std::vector<uint64_t> ids;
    ids.swap(reprocess_);
    for (uint64_t id : ids) {
      auto it = conns_.find(id);
      if (it == conns_.end()) continue;
      Conn* c = it->second.get();
      c->reprocess = false;
      if (c->dead || c->closed || c->paused || c->in.empty()) continue;
      ParseClient(c, nullptr, 0);
      Interest(c);
    }
  }
}

void HttpRelay::Dispatch(uint64_t data, uint32_t events) {
  auto side = static_cast<Side>(data & 3);
  uint64_t id = data >> 8;
  if (side == kListener) return Accept(static_cast<uint32_t>(id));
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn* c = it->second.get();
  if (side == kUpstream && (c->ufd < 0 || ((data >> 2) & 0x3f) != (c->upGen & 0x3f))) return;  // an earlier upstream's
  if (events & (EPOLLOUT | EPOLLERR)) OnWritable(c, side == kUpstream);
  if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !c->dead) {
    if (side == kClient) OnClientReadable(c);
    else if (c->ufd >= 0) OnUpstreamReadable(c);  // OnWritable may have dropped it
  }
  if (!c->dead) Interest(c);
}

void HttpRelay::Accept(uint32_t listenerId) {
  for (int i = 0; i < kBatch; i++) {
    // Looked up again each time: JS may close the listener from onAccept.
    auto lit = listeners_.find(listenerId);
    if (lit == listeners_.end() || lit->second.fd < 0) return;
    const Listener l = lit->second;
    sockaddr_in src{}, dst{};
    socklen_t sl = sizeof(src), dl = sizeof(dst);
    int fd = accept4(l.fd, reinterpret_cast<sockaddr*>(&src), &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // EAGAIN; or out of fds: the next turn tries again
    }
    // A flood of connections to one endpoint must not take every fd of the agent.
    if (l.open >= limits_.maxConnectionsPerListener || getsockname(fd, reinterpret_cast<sockaddr*>(&dst), &dl) < 0 || src.sin_family != AF_INET) {
      counters_.refused++;
      close(fd);
      continue;
    }
    if (l.fixed) dst = l.upstream;
    uint64_t id = nextConn_++;
    auto env = env_;
    Napi::Value ok;
    CallJs(onAccept_,
           {Napi::Number::New(env, listenerId), Napi::Number::New(env, static_cast<double>(id)), Napi::String::New(env, AddrText(src)),
            Napi::Number::New(env, ntohs(src.sin_port)), Napi::String::New(env, AddrText(dst)), Napi::Number::New(env, ntohs(dst.sin_port))},
           &ok);
    if (stopped_) {
      close(fd);
      return;
    }
    if (ok.IsEmpty() || !ok.ToBoolean().Value()) {
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto c = std::make_unique<Conn>();
    c->id = id;
    c->listener = listenerId;
    c->tag = l.tag;
    c->cfd = fd;
    c->src = src;
    c->dst = dst;
    c->clientActive = c->upActive = Now();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = Key(id, 0, kClient);
    if (epoll_ctl(efd_, EPOLL_CTL_ADD, fd, &ev) < 0) {
      close(fd);
      CallJs(onClose_, {Napi::Number::New(env, static_cast<double>(id))});
      continue;
    }
    c->clientEvents = EPOLLIN;
    counters_.connections++;
    auto again = listeners_.find(listenerId);  // JS may have closed it meanwhile
    if (again != listeners_.end()) again->second.open++;
    else c->listener = 0;
    conns_[id] = std::move(c);
  }
}

void HttpRelay::SetInterest(int fd, uint64_t data, uint32_t* cur, uint32_t want) {
  if (*cur == want) return;
  epoll_event ev{};
  ev.events = want;
  ev.data.u64 = data;
  if (epoll_ctl(efd_, EPOLL_CTL_MOD, fd, &ev) == 0) *cur = want;
}

void HttpRelay::Interest(Conn* c) {
  if (c->dead) return;
  uint32_t cw = 0;
  // Once closed, reads only discard (until the client's FIN), whatever paused them.
  if (!c->clientEof && (!c->paused || c->closed)) cw |= EPOLLIN;
  if (!c->outClient.empty()) cw |= EPOLLOUT;
  SetInterest(c->cfd, Key(c->id, 0, kClient), &c->clientEvents, cw);
  if (c->ufd < 0) return;
  uint32_t uw = 0;
  if (!c->upPaused) uw |= EPOLLIN;
  if (c->upConnecting || !c->outUp.empty()) uw |= EPOLLOUT;
  SetInterest(c->ufd, Key(c->id, c->upGen, kUpstream), &c->upEvents, uw);
}

// ---- client side

void HttpRelay::OnClientReadable(Conn* c) {
  ssize_t n;
  do n = recv(c->cfd, readBuf_.data(), readBuf_.size(), 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN) Kill(c);
    return;
  }
  if (n == 0) {
    c->clientEof = true;
    if (c->closed) {
      if (c->finSent) Kill(c);
      return;
    }
    return OnClientEnd(c);
  }
  if (c->closed) return;  // discarded: no more requests are taken
  c->clientActive = Now();
  ParseClient(c, readBuf_.data(), static_cast<size_t>(n));
}

// Parses what the client sent: `in` (kept from before) followed by buf[0, n); keeps the rest.
void HttpRelay::ParseClient(Conn* c, const uint8_t* buf, size_t n) {
  std::string rest;
  if (c->in.empty()) {
    ProcessClient(c, buf, n, &rest);
  } else {
    std::string work;
    work.swap(c->in);
    work.append(reinterpret_cast<const char*>(buf), n);
    ProcessClient(c, reinterpret_cast<const uint8_t*>(work.data()), work.size(), &rest);
  }
  if (!c->dead) c->in = std::move(rest);
}

void HttpRelay::ProcessClient(Conn* c, const uint8_t* buf, size_t len, std::string* rest) {
  size_t pos = 0;
  // Allowed requests that follow each other in buf go upstream in one write: buf[fwdFrom, fwdTo).
  size_t fwdFrom = 0, fwdTo = 0;
  uint32_t mark = 0;
  http::Error err;
  while (!c->closed) {
    if (c->inReqBody) {
      size_t n = c->reqBody.Consume(buf + pos, len - pos);
      if (c->reqBody.failed()) {
        Reject(c, 400, "bad request body: " + c->reqBody.error());
        pos = len;
        break;
      }
      // The rest of a body whose upstream is gone (it answered early and closed) goes nowhere:
      // never to a new upstream, which would take it for a request.
      if (c->reqBodyForward && !c->upUsable && fwdTo == fwdFrom) c->reqBodyForward = false;
      if (c->reqBodyForward && n > 0) {
        if (fwdTo != pos) {
          Forward(c, buf, fwdFrom, fwdTo, mark);
          fwdFrom = pos;
        }
        fwdTo = pos + n;
      }
      pos += n;
      if (!c->reqBody.done()) break;
      c->inReqBody = false;
      continue;
    }
    if (c->clientDone) pos = len;
    if (pos == len) break;
    if (c->queue.size() >= limits_.maxPipeline) {
      c->paused = true;
      break;
    }
    http::Limits hl{limits_.maxHeadBytes, limits_.maxHeaders};
    auto r = http::ParseRequest(buf + pos, len - pos, hl, false, scratch_, &head_, &err);
    if (r == http::Result::Incomplete) {
      if (c->headStart == 0) c->headStart = Now();
      break;
    }
    c->headStart = 0;
    if (r == http::Result::Error) {
      Reject(c, err.status, err.reason);
      pos = len;
      break;
    }
    if (head_.upgrade) {
      Invalid(c, 501, "upgrade and CONNECT are not supported through the L7 proxy", &head_);
      RespondLocal(c, false, UpgradeRefused(), true);
      pos = len;
      break;
    }
    // A new upstream is made for this request unless one is usable or earlier ones in buf make it.
    bool needsUpstream = !c->upUsable && fwdTo == fwdFrom;
    bool allowed;
    const CachedVerdict* hit = nullptr;
    // The cache serves requests that make no upstream (that needs the mark JS computes).
    if (!watching_ && !needsUpstream && c->cacheEpoch == epoch_) {
      CacheKey(head_, &key_);
      hit = Cached(c, key_);
    }
    if (hit != nullptr) {
      allowed = hit->allowed;
      cachedVerdicts_[c->tag][allowed ? 0 : 1]++;
    } else {
      int64_t v = Decide(c, head_, needsUpstream, false);
      if (v == kNeedHeaders && !c->dead) {
        http::ParseRequest(buf + pos, len - pos, hl, true, scratch_, &head_, &err);
        v = Decide(c, head_, needsUpstream, true);
      }
      if (c->dead || c->closed) break;
      allowed = v >= 0;
      if (v == kDenyCacheable || v >= kCacheable) {
        CacheKey(head_, &key_);
        Remember(c, key_, allowed);
      }
      if (allowed && needsUpstream) mark = static_cast<uint32_t>(v & 0xffffffff);
    }
    size_t end = pos + head_.headBytes;
    if (allowed) {
      c->queue.push_back(Pending{false, head_.method == "HEAD", head_.close, {}});
      if (fwdTo != pos) {
        Forward(c, buf, fwdFrom, fwdTo, mark);
        fwdFrom = pos;
      }
      fwdTo = end;
    } else {
      RespondLocal(c, head_.method == "HEAD", Denied(head_.close), head_.close);
    }
    if (head_.framing != http::Framing::None) {
      c->reqBody.Reset(head_.framing, head_.length);
      c->inReqBody = true;
      c->reqBodyForward = allowed;
    }
    pos = end;
    if (head_.close) c->clientDone = true;
  }
  Forward(c, buf, fwdFrom, fwdTo, mark);
  if (pos < len && !c->clientDone) rest->assign(reinterpret_cast<const char*>(buf + pos), len - pos);
}

void HttpRelay::CacheKey(const http::RequestHead& h, std::string* key) {
  key->assign(h.method);
  key->push_back('\0');
  key->append(h.path);
  key->push_back('\0');
  if (h.hasHost) {
    key->push_back('h');
    key->append(h.host);
  }
}

const HttpRelay::CachedVerdict* HttpRelay::Cached(Conn* c, const std::string& key) {
  for (auto& e : c->cache)
    if (e.key == key) return &e;
  return nullptr;
}

void HttpRelay::Remember(Conn* c, std::string key, bool allowed) {
  if (c->cacheEpoch != epoch_) {
    c->cache.clear();
    c->cacheNext = 0;
    c->cacheEpoch = epoch_;
  }
  if (c->cache.size() < kCacheEntries) {
    c->cache.push_back(CachedVerdict{std::move(key), allowed});
    return;
  }
  // Full: replace in turn (a connection rarely asks more than a few distinct things).
  c->cache[c->cacheNext] = CachedVerdict{std::move(key), allowed};
  c->cacheNext = (c->cacheNext + 1) % kCacheEntries;
}

namespace {
napi_value Latin1(napi_env env, std::string_view s) {
  napi_value v;
  napi_create_string_latin1(env, s.data(), s.size(), &v);
  return v;
}
}  // namespace

// decide(conn, method, path, host | undefined, headers: string[] (name, value, ...) | null, needsUpstream)
// -> upstream mark (allowed), kDeny, or kNeedHeaders. JS records the decision.
int64_t HttpRelay::Decide(Conn* c, const http::RequestHead& h, bool needsUpstream, bool withHeaders) {
  auto env = env_;
  napi_value headers = env.Null();
  if (withHeaders) {
    auto a = Napi::Array::New(env, h.headers.size() * 2);
    uint32_t i = 0;
    for (auto& hd : h.headers) {
      a.Set(i++, Latin1(env, hd.name));
      a.Set(i++, Latin1(env, hd.value));
    }
    headers = a;
  }
  Napi::Value r;
  CallJs(decide_,
         {Napi::Number::New(env, static_cast<double>(c->id)), Latin1(env, h.method), Latin1(env, h.path), h.hasHost ? Latin1(env, h.host) : static_cast<napi_value>(env.Undefined()), headers,
          Napi::Boolean::New(env, needsUpstream)},
         &r);
  if (r.IsEmpty() || !r.IsNumber()) return kDeny;
  int64_t v = r.As<Napi::Number>().Int64Value();
  if (v < kDenyCacheable || v >= 2 * kCacheable) return kDeny;
  // Asked for the headers again although they were given: fail closed.
  if (v == kNeedHeaders && withHeaders) return kDeny;
  return v;
}

// onInvalid(conn, status, reason, method, path, host): a request the proxy answered itself.
void HttpRelay::Invalid(Conn* c, int status, const std::string& reason, const http::RequestHead* h) {
  auto env = env_;
  CallJs(onInvalid_, {Napi::Number::New(env, static_cast<double>(c->id)), Napi::Number::New(env, status), Napi::String::New(env, reason), Latin1(env, h ? h->method : ""),
                      Latin1(env, h ? std::string_view(h->path) : ""), h && h->hasHost ? Latin1(env, h->host) : static_cast<napi_value>(env.Undefined())});
}

// A request the proxy cannot parse or judge: answered, then no more reads (no resync possible).
void HttpRelay::Reject(Conn* c, int status, const std::string& reason) {
  c->headStart = 0;
  if (c->clientDone && c->queue.empty() && status == 408) return Kill(c);
  Invalid(c, status, reason, nullptr);
  if (c->dead) return;
  c->clientDone = true;
  c->inReqBody = false;
  c->in.clear();
  RespondLocal(c, false, LocalResponse(status, reason + "\r\n", true), true);
}

void HttpRelay::RespondLocal(Conn* c, bool head, std::string bytes, bool close) {
  c->queue.push_back(Pending{true, head, close, std::move(bytes)});
  if (close) c->clientDone = true;
  FlushLocal(c);
}

// Writes the local answers at the head of the queue (after every earlier upstream answer).
void HttpRelay::FlushLocal(Conn* c) {
  while (!c->closed && !c->queue.empty() && c->queue.front().local) {
    Pending p = std::move(c->queue.front());
    c->queue.pop_front();
    c->clientActive = Now();
    Write(c, false, reinterpret_cast<const uint8_t*>(p.bytes.data()), p.bytes.size());
    if (p.close) return Finish(c);
  }
  if (!c->closed && c->queue.empty() && c->clientDone && !c->inReqBody && c->in.empty()) return Finish(c);
  ResumeClient(c);
}

void HttpRelay::ResumeClient(Conn* c) {
  if (!c->paused || c->closed || c->dead) return;
  if (c->queue.size() >= limits_.maxPipeline || !c->outUp.empty()) return;
  c->paused = false;
  if (!c->in.empty() && !c->reprocess) {
    c->reprocess = true;
    reprocess_.push_back(c->id);
  }
}

// ---- upstream side

bool HttpRelay::EnsureUpstream(Conn* c, uint32_t mark) {
  if (c->ufd >= 0 && c->upUsable) return true;
  DropUpstream(c);
  // The upstream leaves with the client's own address and port (IP_TRANSPARENT); when that
  // 4-tuple is taken here (an earlier upstream in TIME_WAIT), from the host's address.
  UpstreamSocket u = OpenUpstream(netnsFd_, selfNsFd_, mark, c->src, c->dst);
  if (u.fd < 0) {
    UpstreamError(c, u.op ? u.op : "socket", u.err);
    return false;
  }
  if (!u.transparent) counters_.upstreamsFromHost++;
  int one = 1;
  setsockopt(u.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  c->ufd = u.fd;
  c->upGen++;
  // Whose policy this proxy applies can change with a new upstream (see connection-policy.ts).
  c->cache.clear();
  c->cacheNext = 0;
  c->upUsable = true;
  c->upConnecting = true;
  c->upPaused = false;
  c->rf.Reset();
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT;
  ev.data.u64 = Key(c->id, c->upGen, kUpstream);
  if (epoll_ctl(efd_, EPOLL_CTL_ADD, u.fd, &ev) < 0) {
    int e = errno;
    UpstreamError(c, "epoll_ctl", e);
    return false;
  }
  c->upEvents = ev.events;
  return true;
}

void HttpRelay::Forward(Conn* c, const uint8_t* buf, size_t from, size_t to, uint32_t mark) {
  if (from == to || c->closed) return;
  if (!EnsureUpstream(c, mark)) return;
  c->upActive = Now();
  if (!Write(c, true, buf + from, to - from) && !c->dead) c->paused = true;
}

void HttpRelay::ToClient(Conn* c, const uint8_t* buf, size_t from, size_t to) {
  if (from == to || c->closed) return;
  c->clientActive = Now();
  Write(c, false, buf + from, to - from);
}

// One non-blocking send to a side: the bytes the kernel took (0 when its buffer is full), or -1
// after a socket error, which has ended that side (upstream: 503 and finish; client: dropped).
ssize_t HttpRelay::Send(Conn* c, bool upstream, const uint8_t* p, size_t n) {
  ssize_t w;
  do w = send(upstream ? c->ufd : c->cfd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (w < 0 && errno == EINTR);
  if (w >= 0 || errno == EAGAIN) return w < 0 ? 0 : w;
  int e = errno;
  if (upstream) UpstreamError(c, "write", e);
  else Kill(c);
  return -1;
}

// Sends now what the kernel takes; the rest waits for EPOLLOUT, in order. False: not all taken.
bool HttpRelay::Write(Conn* c, bool upstream, const uint8_t* p, size_t n) {
  std::string& out = upstream ? c->outUp : c->outClient;
  if ((upstream ? c->ufd : c->cfd) < 0 || c->dead) return false;
  if (out.empty() && !(upstream && c->upConnecting)) {
    ssize_t w = Send(c, upstream, p, n);
    if (w == static_cast<ssize_t>(n)) return true;
    if (w < 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  out.append(reinterpret_cast<const char*>(p), n);
  return false;
}

// The client has every answer: our FIN; once the client's came too, the connection is done.
void HttpRelay::SendFin(Conn* c) {
  shutdown(c->cfd, SHUT_WR);
  c->finSent = true;
  if (c->clientEof) Kill(c);
}

void HttpRelay::OnWritable(Conn* c, bool upstream) {
  if (upstream && c->upConnecting) {
    int err = 0;
    socklen_t l = sizeof(err);
    if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &l) < 0) err = errno;
    if (err != 0) return UpstreamError(c, "connect", err);
    c->upConnecting = false;
  }
  std::string& out = upstream ? c->outUp : c->outClient;
  if ((upstream ? c->ufd : c->cfd) < 0) return;
  if (!out.empty()) {
    ssize_t w = Send(c, upstream, reinterpret_cast<const uint8_t*>(out.data()), out.size());
    if (w < 0) return;
    out.erase(0, static_cast<size_t>(w));
    if (!out.empty()) return;
  }
  if (upstream) return ResumeClient(c);
  // The client took everything: the upstream may be read again; a finished connection sends its FIN.
  c->upPaused = false;
  if (c->closed && !c->finSent) SendFin(c);
}

void HttpRelay::OnUpstreamReadable(Conn* c) {
  ssize_t n;
  do n = recv(c->ufd, readBuf_.data(), readBuf_.size(), 0);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno != EAGAIN) UpstreamError(c, "read", errno);
    return;
  }
  if (n == 0) return OnUpstreamEnd(c);
  if (c->closed) return;
  c->upActive = Now();
  size_t pos;
  if (c->resp.empty()) {
    pos = ProcessUpstream(c, readBuf_.data(), static_cast<size_t>(n));
    if (!c->closed && c->ufd >= 0 && pos < static_cast<size_t>(n)) c->resp.assign(reinterpret_cast<const char*>(readBuf_.data() + pos), static_cast<size_t>(n) - pos);
  } else {
    std::string work;
    work.swap(c->resp);
    work.append(reinterpret_cast<const char*>(readBuf_.data()), static_cast<size_t>(n));
    pos = ProcessUpstream(c, reinterpret_cast<const uint8_t*>(work.data()), work.size());
    if (!c->closed && c->ufd >= 0 && pos < work.size()) c->resp = work.substr(pos);
  }
  c->upPaused = !c->outClient.empty();
}

// Frames the responses in buf and forwards them to the client; returns the bytes used.
size_t HttpRelay::ProcessUpstream(Conn* c, const uint8_t* buf, size_t len) {
  size_t pos = 0;
  // Consecutive responses go to the client in one write: buf[sent, pos).
  size_t sent = 0;
  while (!c->closed && pos < len) {
    if (c->queue.empty() || c->queue.front().local) {
      ToClient(c, buf, sent, pos);
      UpstreamFailed(c, 502, "upstream sent data nobody asked for");
      return pos;
    }
    pos = c->rf.Feed(buf, len, pos, c->queue.front().head);
    if (c->rf.failed()) {
      ToClient(c, buf, sent, pos);
      UpstreamFailed(c, 502, c->rf.error());
      return pos;
    }
    if (!c->rf.done()) break;
    Pending p = std::move(c->queue.front());
    c->queue.pop_front();
    if (!c->rf.close() && !p.close && !c->queue.empty() && !c->queue.front().local) continue;
    ToClient(c, buf, sent, pos);
    sent = pos;
    ResponseDone(c, p);
  }
  ToClient(c, buf, sent, pos);
  return pos;
}

void HttpRelay::ResponseDone(Conn* c, const Pending& p) {
  if (c->rf.close()) {
    DropUpstream(c);
    // Requests already written to that connection will not be answered by it.
    for (auto& q : c->queue)
      if (!q.local) return Finish(c);
  }
  if (p.close) return Finish(c);
  FlushLocal(c);
}

void HttpRelay::OnUpstreamEnd(Conn* c) {
  if (c->rf.untilClose()) {
    // Close-delimited body: the end of the connection is the end of the response.
    if (!c->queue.empty()) c->queue.pop_front();
    return Finish(c);  // drops the upstream
  }
  DropUpstream(c);
  for (auto& q : c->queue)
    if (!q.local) return UpstreamFailed(c, 502, "upstream closed the connection");
}

void HttpRelay::UpstreamError(Conn* c, const std::string& op, int err) {
  counters_.upstreamErrors++;
  std::string msg = op + " " + ErrnoText(err) + " " + AddrText(c->dst) + ":" + std::to_string(ntohs(c->dst.sin_port));
  CallJs(onError_, {Napi::Number::New(env_, static_cast<double>(c->id)), Napi::String::New(env_, msg)});
  UpstreamFailed(c, 503, "upstream: " + msg);
}

// The upstream broke: answer the request in front if nothing of its answer was sent, then close.
void HttpRelay::UpstreamFailed(Conn* c, int status, const std::string& reason) {
  DropUpstream(c);
  if (c->dead) return;
  if (!c->rf.started() && !c->queue.empty() && !c->queue.front().local && !c->closed) {
    std::string r = LocalResponse(status, reason + "\r\n", true);
    Write(c, false, reinterpret_cast<const uint8_t*>(r.data()), r.size());
  }
  Finish(c);
}

void HttpRelay::DropUpstream(Conn* c) {
  c->upUsable = false;
  if (c->ufd < 0) return;
  close(c->ufd);  // also leaves the epoll set
  c->ufd = -1;
  c->upEvents = 0;
  c->upConnecting = false;
  c->upPaused = false;
  c->outUp.clear();
  c->resp.clear();
  if (c->paused) ResumeClient(c);
}

void HttpRelay::OnClientEnd(Conn* c) {
  c->clientDone = true;
  if (c->queue.empty()) Finish(c);
}

// Ends the client connection gracefully after what was written (FIN once it is sent).
void HttpRelay::Finish(Conn* c) {
  if (c->closed || c->dead) return;
  c->closed = true;
  c->headStart = 0;
  c->clientActive = Now();
  DropUpstream(c);
  c->in.clear();
  if (c->outClient.empty()) SendFin(c);
}

// Drops both sides now; JS hears onClose. The Conn lives until the end of the loop turn.
void HttpRelay::Kill(Conn* c) {
  if (c->dead) return;
  c->dead = c->closed = true;
  close(c->cfd);
  if (c->ufd >= 0) close(c->ufd);
  c->ufd = -1;
  auto lit = listeners_.find(c->listener);
  if (lit != listeners_.end()) {
    lit->second.open--;
    if (lit->second.fd < 0 && lit->second.open == 0) listeners_.erase(lit);
  }
  auto it = conns_.find(c->id);
  if (it != conns_.end()) {
    graveyard_.push_back(std::move(it->second));
    conns_.erase(it);
  }
  UnrefIfIdle();
  if (!stopped_) CallJs(onClose_, {Napi::Number::New(env_, static_cast<double>(c->id))});
}

void InitHttpRelay(Napi::Env env, Napi::Object exports) { exports.Set("HttpRelay", HttpRelay::Define(env)); }

}  // namespace ward
