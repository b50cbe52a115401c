#include <bpf/libbpf.h>
#include <cstdarg>
#include <cstring>
#include "common.h"

namespace ward {

static std::string g_log;

static int CapturePrint(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (level == LIBBPF_DEBUG) return 0;
  char buf[1024];
  int n = vsnprintf(buf, sizeof(buf), fmt, ap);
  if (n > 0) {
    g_log.append(buf, std::min<size_t>(n, sizeof(buf) - 1));
    // Keep only the tail: the verifier's last lines say why it refused.
    if (g_log.size() > 16384) g_log.erase(0, g_log.size() - 16384);
  }
  return 0;
}

void LibbpfLogReset() {
  static bool installed = false;
  if (!installed) {
    libbpf_set_print(CapturePrint);
    installed = true;
  }
  g_log.clear();
}

std::string LibbpfLogTake() {
  std::string s;
  s.swap(g_log);
  return s;
}

void ThrowErrno(Napi::Env env, const std::string& op, int err, const std::string& detail) {
  if (err < 0) err = -err;
  const char* name = strerrorname_np(err);
  std::string code = name ? name : ("E" + std::to_string(err));
  std::string msg = op + ": " + strerror(err) + " (" + code + ")";
  if (!detail.empty()) msg += "\n" + detail;
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("code", Napi::String::New(env, code));
  e.Set("syscall", Napi::String::New(env, op));
  throw e;
}

void ThrowType(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }

int ArgFd(const Napi::CallbackInfo& info, size_t i) {
  if (!info[i].IsNumber()) ThrowType(info.Env(), "argument " + std::to_string(i) + " must be a file descriptor");
  return info[i].As<Napi::Number>().Int32Value();
}

uint8_t* ArgBytes(const Napi::CallbackInfo& info, size_t i, size_t* len) {
  if (!info[i].IsTypedArray()) ThrowType(info.Env(), "argument " + std::to_string(i) + " must be a Buffer");
  auto a = info[i].As<Napi::Uint8Array>();
  *len = a.ByteLength();
  return a.Data();
}

std::string ArgString(const Napi::CallbackInfo& info, size_t i) {
  if (info[i].IsUndefined() || info[i].IsNull()) return "";
  if (!info[i].IsString()) ThrowType(info.Env(), "argument " + std::to_string(i) + " must be a string");
  return info[i].As<Napi::String>().Utf8Value();
}

}  // namespace ward
