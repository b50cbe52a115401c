// Map syscalls: create, pin, open pinned, lookup/update/delete/next-key and the batch forms.
// Keys and values are caller-owned Buffers in the kernel layout (see bpf/*/layout.ts).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cerrno>
#include <cstring>
#include <unistd.h>
#include "common.h"

namespace ward {

static Napi::Value MapCreate(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (!info[0].IsObject()) ThrowType(env, "mapCreate(spec)");
  auto o = info[0].As<Napi::Object>();
  auto num = [&](const char* k, uint32_t def) -> uint32_t {
    auto v = o.Get(k);
    return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : def;
  };
  std::string name = o.Get("name").IsString() ? o.Get("name").As<Napi::String>().Utf8Value() : "";
  LIBBPF_OPTS(bpf_map_create_opts, opts);
  opts.map_flags = num("flags", 0);
  int inner = o.Get("innerMapFd").IsNumber() ? o.Get("innerMapFd").As<Napi::Number>().Int32Value() : -1;
  if (inner >= 0) opts.inner_map_fd = inner;
  int fd = bpf_map_create(static_cast<enum bpf_map_type>(num("type", 0)), name.empty() ? nullptr : name.c_str(),
                          num("keySize", 0), num("valueSize", 0), num("maxEntries", 0), &opts);
  if (fd < 0) ThrowErrno(env, "bpf_map_create " + name, errno);
  return Napi::Number::New(env, fd);
}

static Napi::Value MapInfo(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = ArgFd(info, 0);
  struct bpf_map_info mi;
  memset(&mi, 0, sizeof(mi));
  uint32_t len = sizeof(mi);
  if (bpf_obj_get_info_by_fd(fd, &mi, &len) < 0) ThrowErrno(env, "bpf_obj_get_info_by_fd", errno);
  auto o = Napi::Object::New(env);
  o.Set("id", mi.id);
  o.Set("type", mi.type);
  o.Set("keySize", mi.key_size);
  o.Set("valueSize", mi.value_size);
  o.Set("maxEntries", mi.max_entries);
  o.Set("flags", mi.map_flags);
  o.Set("name", std::string(mi.name));
  return o;
}

static Napi::Value ProgInfo(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = ArgFd(info, 0);
  struct bpf_prog_info pi;
  memset(&pi, 0, sizeof(pi));
  uint32_t len = sizeof(pi);
  if (bpf_obj_get_info_by_fd(fd, &pi, &len) < 0) ThrowErrno(env, "bpf_obj_get_info_by_fd", errno);
  auto o = Napi::Object::New(env);
  o.Set("id", pi.id);
  o.Set("type", pi.type);
  o.Set("name", std::string(pi.name));
  return o;
}

static Napi::Value ObjPin(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  std::string path = ArgString(info, 1);
  if (bpf_obj_pin(fd, path.c_str()) < 0) ThrowErrno(info.Env(), "bpf_obj_pin " + path, errno);
  return info.Env().Undefined();
}

static Napi::Value ObjGet(const Napi::CallbackInfo& info) {
  std::string path = ArgString(info, 0);
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) ThrowErrno(info.Env(), "bpf_obj_get " + path, errno);
  return Napi::Number::New(info.Env(), fd);
}

static Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0);
  if (close(fd) < 0) ThrowErrno(info.Env(), "close", errno);
  return info.Env().Undefined();
}

// mapLookup(fd, key, valueOut): true if found (valueOut filled).
static Napi::Value MapLookup(const Napi::CallbackInfo& info) {
  size_t kl, vl;
  int fd = ArgFd(info, 0);
  uint8_t* k = ArgBytes(info, 1, &kl);
  uint8_t* v = ArgBytes(info, 2, &vl);
  if (bpf_map_lookup_elem(fd, k, v) < 0) {
    if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
    ThrowErrno(info.Env(), "bpf_map_lookup_elem", errno);
  }
  return Napi::Boolean::New(info.Env(), true);
}

// mapUpdate(fd, key, value, flags)
static Napi::Value MapUpdate(const Napi::CallbackInfo& info) {
  size_t kl, vl;
  int fd = ArgFd(info, 0);
  uint8_t* k = ArgBytes(info, 1, &kl);
  uint8_t* v = ArgBytes(info, 2, &vl);
  uint64_t flags = info.Length() > 3 && info[3].IsNumber() ? info[3].As<Napi::Number>().Int64Value() : 0;
  if (bpf_map_update_elem(fd, k, v, flags) < 0) ThrowErrno(info.Env(), "bpf_map_update_elem", errno);
  return info.Env().Undefined();
}

// mapDelete(fd, key): true if it existed.
static Napi::Value MapDelete(const Napi::CallbackInfo& info) {
  size_t kl;
  int fd = ArgFd(info, 0);
  uint8_t* k = ArgBytes(info, 1, &kl);
  if (bpf_map_delete_elem(fd, k) < 0) {
    if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
    ThrowErrno(info.Env(), "bpf_map_delete_elem", errno);
  }
  return Napi::Boolean::New(info.Env(), true);
}

// mapGetNextKey(fd, key|null, nextOut): false at the end.
static Napi::Value MapGetNextKey(const Napi::CallbackInfo& info) {
  size_t kl = 0, nl;
  int fd = ArgFd(info, 0);
  uint8_t* k = info[1].IsNull() || info[1].IsUndefined() ? nullptr : ArgBytes(info, 1, &kl);
  uint8_t* n = ArgBytes(info, 2, &nl);
  if (bpf_map_get_next_key(fd, k, n) < 0) {
    if (errno == ENOENT) return Napi::Boolean::New(info.Env(), false);
    ThrowErrno(info.Env(), "bpf_map_get_next_key", errno);
  }
  return Napi::Boolean::New(info.Env(), true);
}

static void ThrowBatch(Napi::Env env, const char* op, int err, uint32_t done) {
  try {
    ThrowErrno(env, op, err);
  } catch (Napi::Error& e) {
    e.Set("count", Napi::Number::New(env, done));
    throw;
  }
}

// mapUpdateBatch(fd, keys, values, count, elemFlags): number updated; on error throws with .count.
static Napi::Value MapUpdateBatch(const Napi::CallbackInfo& info) {
  size_t kl, vl;
  int fd = ArgFd(info, 0);
  uint8_t* k = ArgBytes(info, 1, &kl);
  uint8_t* v = ArgBytes(info, 2, &vl);
  uint32_t count = info[3].As<Napi::Number>().Uint32Value();
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  opts.elem_flags = info.Length() > 4 && info[4].IsNumber() ? info[4].As<Napi::Number>().Int64Value() : 0;
  if (count == 0) return Napi::Number::New(info.Env(), 0);
  if (bpf_map_update_batch(fd, k, v, &count, &opts) < 0) ThrowBatch(info.Env(), "bpf_map_update_batch", errno, count);
  return Napi::Number::New(info.Env(), count);
}

// mapDeleteBatch(fd, keys, count): number deleted; on error throws with .count.
static Napi::Value MapDeleteBatch(const Napi::CallbackInfo& info) {
  size_t kl;
  int fd = ArgFd(info, 0);
  uint8_t* k = ArgBytes(info, 1, &kl);
  uint32_t count = info[2].As<Napi::Number>().Uint32Value();
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  if (count == 0) return Napi::Number::New(info.Env(), 0);
  if (bpf_map_delete_batch(fd, k, &count, &opts) < 0) ThrowBatch(info.Env(), "bpf_map_delete_batch", errno, count);
  return Napi::Number::New(info.Env(), count);
}

// mapLookupBatch(fd, inBatch|null, outBatch, keys, values, count) -> {count, done}
static Napi::Value MapLookupBatch(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  size_t l;
  int fd = ArgFd(info, 0);
  uint8_t* in = info[1].IsNull() || info[1].IsUndefined() ? nullptr : ArgBytes(info, 1, &l);
  uint8_t* out = ArgBytes(info, 2, &l);
  uint8_t* k = ArgBytes(info, 3, &l);
  uint8_t* v = ArgBytes(info, 4, &l);
  uint32_t count = info[5].As<Napi::Number>().Uint32Value();
  LIBBPF_OPTS(bpf_map_batch_opts, opts);
  bool done = false;
  if (bpf_map_lookup_batch(fd, in, out, k, v, &count, &opts) < 0) {
    if (errno != ENOENT) ThrowBatch(env, "bpf_map_lookup_batch", errno, count);
    done = true;
  }
  auto o = Napi::Object::New(env);
  o.Set("count", count);
  o.Set("done", done);
  return o;
}

// progTestRun(progFd, packet, {ifindex?, repeat?}) -> {retval, durationNs}: BPF_PROG_TEST_RUN
// on a synthetic frame; ifindex selects the device the skb claims (must exist here, 1 = lo).
static Napi::Value ProgTestRun(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  size_t len;
  int fd = ArgFd(info, 0);
  uint8_t* pkt = ArgBytes(info, 1, &len);
  uint32_t ifindex = 0, repeat = 1;
  if (info.Length() > 2 && info[2].IsObject()) {
    auto o = info[2].As<Napi::Object>();
    if (o.Get("ifindex").IsNumber()) ifindex = o.Get("ifindex").As<Napi::Number>().Uint32Value();
    if (o.Get("repeat").IsNumber()) repeat = o.Get("repeat").As<Napi::Number>().Uint32Value();
  }
  struct __sk_buff ctx;
  memset(&ctx, 0, sizeof(ctx));
  ctx.ifindex = ifindex;
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = static_cast<uint32_t>(len),
              .ctx_in = &ctx, .ctx_size_in = sizeof(ctx), .repeat = static_cast<int>(repeat));
  if (bpf_prog_test_run_opts(fd, &opts) < 0) ThrowErrno(env, "bpf_prog_test_run_opts", errno);
  auto o = Napi::Object::New(env);
  o.Set("retval", opts.retval);
  o.Set("durationNs", opts.duration);
  return o;
}

static Napi::Value NumPossibleCpus(const Napi::CallbackInfo& info) {
  int n = libbpf_num_possible_cpus();
  if (n < 0) ThrowErrno(info.Env(), "libbpf_num_possible_cpus", n);
  return Napi::Number::New(info.Env(), n);
}

void InitMaps(Napi::Env env, Napi::Object exports) {
  exports.Set("mapCreate", Napi::Function::New(env, MapCreate, "mapCreate"));
  exports.Set("mapInfo", Napi::Function::New(env, MapInfo, "mapInfo"));
  exports.Set("progInfo", Napi::Function::New(env, ProgInfo, "progInfo"));
  exports.Set("objPin", Napi::Function::New(env, ObjPin, "objPin"));
  exports.Set("objGet", Napi::Function::New(env, ObjGet, "objGet"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("mapLookup", Napi::Function::New(env, MapLookup, "mapLookup"));
  exports.Set("mapUpdate", Napi::Function::New(env, MapUpdate, "mapUpdate"));
  exports.Set("mapDelete", Napi::Function::New(env, MapDelete, "mapDelete"));
  exports.Set("mapGetNextKey", Napi::Function::New(env, MapGetNextKey, "mapGetNextKey"));
  exports.Set("mapUpdateBatch", Napi::Function::New(env, MapUpdateBatch, "mapUpdateBatch"));
  exports.Set("mapDeleteBatch", Napi::Function::New(env, MapDeleteBatch, "mapDeleteBatch"));
  exports.Set("mapLookupBatch", Napi::Function::New(env, MapLookupBatch, "mapLookupBatch"));
  exports.Set("progTestRun", Napi::Function::New(env, ProgTestRun, "progTestRun"));
  exports.Set("numPossibleCpus", Napi::Function::New(env, NumPossibleCpus, "numPossibleCpus"));
}

}  // namespace ward
