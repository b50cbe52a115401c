// tc (clsact) attach / atomic replace / detach / query, in any network namespace, in-process.
#include <bpf/libbpf.h>
#include <net/if.h>
#include <cerrno>
#include "common.h"

namespace ward {

struct TcArgs {
  std::string netns;
  int ifindex = 0;
  bpf_tc_attach_point point = BPF_TC_INGRESS;
  uint32_t handle = 1;
  uint32_t priority = 1;
};

static TcArgs ParseTc(Napi::Env env, const Napi::Value& v) {
  if (!v.IsObject()) ThrowType(env, "expected {ifindex, attachPoint, netns?, handle?, priority?}");
  auto o = v.As<Napi::Object>();
  TcArgs a;
  if (o.Get("netns").IsString()) a.netns = o.Get("netns").As<Napi::String>().Utf8Value();
  if (!o.Get("ifindex").IsNumber()) ThrowType(env, "ifindex must be a number");
  a.ifindex = o.Get("ifindex").As<Napi::Number>().Int32Value();
  std::string p = o.Get("attachPoint").IsString() ? o.Get("attachPoint").As<Napi::String>().Utf8Value() : "";
  if (p == "ingress") a.point = BPF_TC_INGRESS;
  else if (p == "egress") a.point = BPF_TC_EGRESS;
  else ThrowType(env, "attachPoint must be 'ingress' or 'egress'");
  if (o.Get("handle").IsNumber()) a.handle = o.Get("handle").As<Napi::Number>().Uint32Value();
  if (o.Get("priority").IsNumber()) a.priority = o.Get("priority").As<Napi::Number>().Uint32Value();
  return a;
}

// tcAttach({netns?, ifindex, attachPoint, handle?, priority?}, progFd): creates the clsact qdisc
// if needed and attaches with BPF_TC_F_REPLACE, so an existing filter at the same handle and
// priority is swapped atomically (no window without a program).
static Napi::Value TcAttach(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  TcArgs a = ParseTc(env, info[0]);
  int progFd = ArgFd(info, 1);
  InNetns(env, a.netns, [&]() {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a.ifindex, .attach_point = a.point);
    int err = bpf_tc_hook_create(&hook);
    if (err && err != -EEXIST) ThrowErrno(env, "bpf_tc_hook_create ifindex " + std::to_string(a.ifindex), err);
    LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = progFd, .flags = BPF_TC_F_REPLACE, .handle = a.handle,
                .priority = a.priority);
    err = bpf_tc_attach(&hook, &opts);
    if (err) ThrowErrno(env, "bpf_tc_attach ifindex " + std::to_string(a.ifindex), err);
    return 0;
  });
  return env.Undefined();
}

// tcDetach(args): true if a filter was removed, false if none was there.
static Napi::Value TcDetach(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  TcArgs a = ParseTc(env, info[0]);
  bool removed = InNetns(env, a.netns, [&]() {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a.ifindex, .attach_point = a.point);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = a.handle, .priority = a.priority);
    int err = bpf_tc_detach(&hook, &opts);
    if (err == -ENOENT || err == -ENODEV || err == -EINVAL) return false;
    if (err) ThrowErrno(env, "bpf_tc_detach ifindex " + std::to_string(a.ifindex), err);
    return true;
  });
  return Napi::Boolean::New(env, removed);
}

// tcQuery(args): id of the attached program, 0 if none.
static Napi::Value TcQuery(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  TcArgs a = ParseTc(env, info[0]);
  uint32_t id = InNetns(env, a.netns, [&]() -> uint32_t {
    LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = a.ifindex, .attach_point = a.point);
    LIBBPF_OPTS(bpf_tc_opts, opts, .handle = a.handle, .priority = a.priority);
    int err = bpf_tc_query(&hook, &opts);
    if (err == -ENOENT || err == -EINVAL || err == -ENODEV) return 0;
    if (err) ThrowErrno(env, "bpf_tc_query ifindex " + std::to_string(a.ifindex), err);
    return opts.prog_id;
  });
  return Napi::Number::New(env, id);
}

// ifNameToIndex(name, netns?): the ifindex inside that namespace (0 never returned: throws).
static Napi::Value IfNameToIndex(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  std::string name = ArgString(info, 0);
  std::string netns = info.Length() > 1 ? ArgString(info, 1) : "";
  unsigned idx = InNetns(env, netns, [&]() { return if_nametoindex(name.c_str()); });
  if (idx == 0) ThrowErrno(env, "if_nametoindex " + name, errno);
  return Napi::Number::New(env, idx);
}

void InitTc(Napi::Env env, Napi::Object exports) {
  exports.Set("tcAttach", Napi::Function::New(env, TcAttach, "tcAttach"));
  exports.Set("tcDetach", Napi::Function::New(env, TcDetach, "tcDetach"));
  exports.Set("tcQuery", Napi::Function::New(env, TcQuery, "tcQuery"));
  exports.Set("ifNameToIndex", Napi::Function::New(env, IfNameToIndex, "ifNameToIndex"));
}

}  // namespace ward
