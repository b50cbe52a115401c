// Ring-buffer reader that never blocks Node's event loop: libbpf's ring_buffer epoll fd is
// watched by a uv_poll handle on the main loop; when it becomes readable we drain the ring and
// call back into JS once per drain with an array of Buffers (one per event, copied).
#include <bpf/libbpf.h>
#include <uv.h>
#include <cerrno>
#include <string>
#include <vector>
#include "common.h"

namespace ward {

class RingBufferReader : public Napi::ObjectWrap<RingBufferReader> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "RingBufferReader",
                       {InstanceMethod("close", &RingBufferReader::Close),
                        InstanceMethod("consume", &RingBufferReader::Consume)});
  }

  // new RingBufferReader(mapFd, callback(events: Buffer[]))
  explicit RingBufferReader(const Napi::CallbackInfo& info) : Napi::ObjectWrap<RingBufferReader>(info) {
    auto env = info.Env();
    int fd = ArgFd(info, 0);
    if (!info[1].IsFunction()) ThrowType(env, "callback must be a function");
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    LibbpfLogReset();
    rb_ = ring_buffer__new(fd, &RingBufferReader::OnSample, this, nullptr);
    if (!rb_) ThrowErrno(env, "ring_buffer__new", errno, LibbpfLogTake());
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    poll_ = new uv_poll_t;
    poll_->data = this;
    int err = uv_poll_init(loop, poll_, ring_buffer__epoll_fd(rb_));
    if (err == 0) err = uv_poll_start(poll_, UV_READABLE, &RingBufferReader::OnReadable);
    if (err) {
      delete poll_;
      poll_ = nullptr;
      ring_buffer__free(rb_);
      rb_ = nullptr;
      ThrowErrno(env, "uv_poll_start", -err);
    }
    async_ = std::make_unique<Napi::AsyncContext>(env, "ward:ringbuf");
    Ref();  // alive while polling, like a socket; close() releases it
  }

  ~RingBufferReader() override { Stop(); }

 private:
  static int OnSample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<RingBufferReader*>(ctx);
    self->pending_.emplace_back(static_cast<const char*>(data), size);
    return 0;
  }

  static void OnReadable(uv_poll_t* h, int status, int events) {
    auto* self = static_cast<RingBufferReader*>(h->data);
    if (!self || !self->rb_) return;
    ring_buffer__consume(self->rb_);
    self->Deliver();
  }

  void Deliver() {
    if (pending_.empty()) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    auto arr = Napi::Array::New(env, pending_.size());
    for (size_t i = 0; i < pending_.size(); i++) {
      arr.Set(i, Napi::Buffer<char>::Copy(env, pending_[i].data(), pending_[i].size()));
    }
    pending_.clear();
    try {
      callback_.MakeCallback(env.Global(), {arr}, *async_);
    } catch (const Napi::Error& e) {
      // An exception in the listener must surface as uncaught, not vanish in the uv callback.
      napi_fatal_exception(env, e.Value());
    }
  }

  void Stop() {
    if (poll_) {
      uv_poll_stop(poll_);
      poll_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    if (rb_) {
      ring_buffer__free(rb_);
      rb_ = nullptr;
    }
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (rb_ || poll_) {
      Stop();
      Unref();
    }
    return info.Env().Undefined();
  }

  // consume(): drains synchronously, delivering to the callback; returns the number of events.
  Napi::Value Consume(const Napi::CallbackInfo& info) {
    if (!rb_) return Napi::Number::New(info.Env(), 0);
    int n = ring_buffer__consume(rb_);
    if (n < 0) ThrowErrno(info.Env(), "ring_buffer__consume", n);
    Deliver();
    return Napi::Number::New(info.Env(), n);
  }

  struct ring_buffer* rb_ = nullptr;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> async_;
  std::vector<std::string> pending_;
};

void InitRingbuf(Napi::Env env, Napi::Object exports) {
  exports.Set("RingBufferReader", RingBufferReader::Define(env));
}

}  // namespace ward
