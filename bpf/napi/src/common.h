// Shared helpers of the ebpf-napi addon: typed errno errors and argument access.
#pragma once
#include <napi.h>
#include <string>

namespace ward {

// Throws a JS Error with errno, code (e.g. "E2BIG"), syscall and a readable message.
[[noreturn]] void ThrowErrno(Napi::Env env, const std::string& op, int err, const std::string& detail = "");
[[noreturn]] void ThrowType(Napi::Env env, const std::string& msg);

// libbpf's own log lines of the current operation (captured through libbpf_set_print).
void LibbpfLogReset();
std::string LibbpfLogTake();

// Runs f with the calling thread inside the network namespace at `netns` (empty = current),
// then switches back. Returns f's result; a failed switch throws.
template <typename F>
auto InNetns(Napi::Env env, const std::string& netns, F f) -> decltype(f());

int ArgFd(const Napi::CallbackInfo& info, size_t i);
uint8_t* ArgBytes(const Napi::CallbackInfo& info, size_t i, size_t* len);
std::string ArgString(const Napi::CallbackInfo& info, size_t i);

void InitMaps(Napi::Env env, Napi::Object exports);
void InitObject(Napi::Env env, Napi::Object exports);
void InitTc(Napi::Env env, Napi::Object exports);
void InitRingbuf(Napi::Env env, Napi::Object exports);
void InitSock(Napi::Env env, Napi::Object exports);

}  // namespace ward

#include "netns-inl.h"
