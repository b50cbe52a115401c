// HttpRelay: the L7 proxy's data path in native code. It accepts on the transparent listeners
// JS hands it, frames HTTP/1.x requests and responses (http-parse.h), forwards the original bytes
// and answers denied or unparseable requests itself. JS is asked once per request head (the
// policy decision stays in TS) and told of connections opening and closing; all socket I/O runs
// here, on the main loop (one epoll set under one uv_poll, one coarse timer for the timeouts).
#pragma once
#include <netinet/in.h>
#include <uv.h>

#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common.h"
#include "http-parse.h"

namespace ward {

struct RelayLimits {
  size_t maxHeadBytes = 16 * 1024;
  size_t maxHeaders = 100;
  uint64_t headTimeoutMs = 10000;
  uint64_t idleTimeoutMs = 120000;
  uint64_t upstreamTimeoutMs = 60000;
  size_t maxPipeline = 32;
  size_t maxConnectionsPerListener = 4096;
};

class HttpRelay : public Napi::ObjectWrap<HttpRelay> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit HttpRelay(const Napi::CallbackInfo& info);
  ~HttpRelay() override;

  // What decide() returns: an upstream mark (0 <= mark < 2^32: allowed), plus kCacheable when
  // the verdict holds for every request with the same method, path and host on this connection
  // until invalidate(); kDeny (kDenyCacheable) when denied; kNeedHeaders to be asked again with
  // the headers.
  static constexpr int64_t kDeny = -1;
  static constexpr int64_t kNeedHeaders = -2;
  static constexpr int64_t kDenyCacheable = -3;
  static constexpr int64_t kCacheable = int64_t{1} << 32;
  static constexpr size_t kCacheEntries = 8;

 private:
  struct Pending {
    bool local;  // the proxy answers (bytes in `bytes`); else the upstream does
    bool head;   // a HEAD request: its answer has no body
    bool close;
    std::string bytes;
  };
  struct Listener {
    int fd = -1;
    uint32_t tag = 0;  // which verdict counters its cached decisions go to
    size_t open = 0;
    bool fixed = false;  // connections go to `upstream`, not to their original destination
    sockaddr_in upstream{};
  };
  struct CachedVerdict {
    std::string key;  // method NUL path NUL host
    bool allowed;
  };
  struct Conn {
    uint64_t id;
    uint32_t listener;
    uint32_t tag;  // the listener's: where cached verdicts are counted
    int cfd;
    int ufd = -1;
    uint32_t upGen = 0;
    sockaddr_in src{};
    sockaddr_in dst{};
    std::string in;    // client bytes not parsed yet
    std::string resp;  // upstream bytes not framed yet
    std::string outClient, outUp;  // bytes the kernel has not taken yet
    uint32_t clientEvents = 0, upEvents = 0;  // current epoll interest
    http::BodyFramer reqBody;
    bool inReqBody = false, reqBodyForward = false;
    http::ResponseFramer rf;
    std::deque<Pending> queue;
    bool upUsable = false, upConnecting = false;
    bool clientDone = false;  // no more requests are read
    bool clientEof = false;
    bool closed = false;      // finishing: answers flushed, then FIN; the rest is discarded
    bool finSent = false;
    bool dead = false;
    bool paused = false;      // client reads stopped (pipeline or upstream full)
    bool upPaused = false;    // upstream reads stopped (client full)
    bool reprocess = false;   // parse `in` again after a pause
    uint64_t clientActive = 0, upActive = 0, headStart = 0;  // loop time, ms
    // Verdicts of earlier requests of this connection, valid while cacheEpoch == epoch_.
    std::vector<CachedVerdict> cache;
    uint64_t cacheEpoch = 0;
    size_t cacheNext = 0;
  };

  // JS surface.
  Napi::Value Listen(const Napi::CallbackInfo& info);
  Napi::Value Unlisten(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Invalidate(const Napi::CallbackInfo& info);
  Napi::Value Watch(const Napi::CallbackInfo& info);

  // Loop.
  static void OnPoll(uv_poll_t* h, int status, int events);
  static void OnTick(uv_timer_t* t);
  template <typename F>
  void Turn(F work);
  void Drain();
  void Tick();
  void Dispatch(uint64_t data, uint32_t events);
  void Accept(uint32_t listenerId);
  void AfterEvents();

  // Connection work.
  void OnClientReadable(Conn* c);
  void ParseClient(Conn* c, const uint8_t* buf, size_t n);
  void OnUpstreamReadable(Conn* c);
  void OnWritable(Conn* c, bool upstream);
  void ProcessClient(Conn* c, const uint8_t* buf, size_t len, std::string* rest);
  size_t ProcessUpstream(Conn* c, const uint8_t* buf, size_t len);
  int64_t Decide(Conn* c, const http::RequestHead& h, bool needsUpstream, bool withHeaders);
  static void CacheKey(const http::RequestHead& h, std::string* key);
  const CachedVerdict* Cached(Conn* c, const std::string& key);
  void Remember(Conn* c, std::string key, bool allowed);
  void Invalid(Conn* c, int status, const std::string& reason, const http::RequestHead* h);
  void Reject(Conn* c, int status, const std::string& reason);
  void RespondLocal(Conn* c, bool head, std::string bytes, bool close);
  void FlushLocal(Conn* c);
  bool EnsureUpstream(Conn* c, uint32_t mark);
  void Forward(Conn* c, const uint8_t* buf, size_t from, size_t to, uint32_t mark);
  void ToClient(Conn* c, const uint8_t* buf, size_t from, size_t to);
  bool Write(Conn* c, bool upstream, const uint8_t* p, size_t n);
  ssize_t Send(Conn* c, bool upstream, const uint8_t* p, size_t n);
  void SendFin(Conn* c);
  void ResponseDone(Conn* c, const Pending& p);
  void OnUpstreamEnd(Conn* c);
  void UpstreamError(Conn* c, const std::string& op, int err);
  void UpstreamFailed(Conn* c, int status, const std::string& reason);
  void DropUpstream(Conn* c);
  void OnClientEnd(Conn* c);
  void Finish(Conn* c);
  void Kill(Conn* c);
  void ResumeClient(Conn* c);
  void Interest(Conn* c);
  void SetInterest(int fd, uint64_t data, uint32_t* cur, uint32_t want);
  uint64_t Now() const;
  void UnrefIfIdle();
  void Stop();
  void CallJs(const Napi::FunctionReference& f, const std::initializer_list<napi_value>& args, Napi::Value* result = nullptr);

  Napi::Env env_;
  RelayLimits limits_;
  int efd_ = -1;
  int netnsFd_ = -1;  // where upstream sockets are made (-1: the current namespace)
  int selfNsFd_ = -1;
  uv_poll_t* poll_ = nullptr;
  uv_timer_t* timer_ = nullptr;
  Napi::FunctionReference onAccept_, decide_, onInvalid_, onClose_, onError_;
  std::unique_ptr<Napi::AsyncContext> async_;
  std::unordered_map<uint32_t, Listener> listeners_;
  uint32_t nextListener_ = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  uint64_t nextConn_ = 1;
  std::vector<std::unique_ptr<Conn>> graveyard_;
  std::vector<uint64_t> reprocess_;
  std::vector<uint8_t> readBuf_;
  http::Scratch scratch_;
  http::RequestHead head_;
  int dispatching_ = 0;  // > 0 while connection work is on the stack (Stop then defers freeing)
  Napi::Reference<Napi::Value> exception_;
  struct {
    double connections = 0, refused = 0, upstreamErrors = 0, upstreamsFromHost = 0;
  } counters_;
  // Decisions taken from the cache (JS never saw them): [listener tag][allowed, denied].
  double cachedVerdicts_[2][2] = {{0, 0}, {0, 0}};
  uint64_t epoch_ = 1;
  bool watching_ = false;  // every decision goes to JS (someone wants its event)
  std::string key_;
  bool stopped_ = false;
};

void InitHttpRelay(Napi::Env env, Napi::Object exports);
void InitHttpProbe(Napi::Env env, Napi::Object exports);

}  // namespace ward
