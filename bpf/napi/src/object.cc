// Opens a BPF object file with a pin root (maps declared LIBBPF_PIN_BY_NAME are pinned there,
// or reused if already pinned), loads it, and hands back duplicated program and map fds.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <unistd.h>
#include <cerrno>
#include <string>
#include <utility>
#include <vector>
#include "common.h"

namespace ward {

// loadObject(path, {pinRoot, maxEntries?: {map: n}}) -> {programs: {name: fd}, maps: {name: fd}}
static Napi::Value LoadObject(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  std::string path = ArgString(info, 0);
  if (!info[1].IsObject()) ThrowType(env, "loadObject(path, {pinRoot})");
  auto o = info[1].As<Napi::Object>();
  std::string pinRoot = o.Get("pinRoot").IsString() ? o.Get("pinRoot").As<Napi::String>().Utf8Value() : "";

  LibbpfLogReset();
  LIBBPF_OPTS(bpf_object_open_opts, oopts);
  if (!pinRoot.empty()) oopts.pin_root_path = pinRoot.c_str();
  struct bpf_object* obj = bpf_object__open_file(path.c_str(), &oopts);
  if (!obj) ThrowErrno(env, "bpf_object__open_file " + path, errno, LibbpfLogTake());
  struct Closer {
    bpf_object* o;
    ~Closer() { bpf_object__close(o); }
  } closer{obj};

  if (o.Get("maxEntries").IsObject()) {
    auto me = o.Get("maxEntries").As<Napi::Object>();
    auto names = me.GetPropertyNames();
    for (uint32_t i = 0; i < names.Length(); i++) {
      std::string name = names.Get(i).As<Napi::String>().Utf8Value();
      struct bpf_map* m = bpf_object__find_map_by_name(obj, name.c_str());
      if (!m) ThrowErrno(env, "no map " + name + " in " + path, ENOENT);
      int err = bpf_map__set_max_entries(m, me.Get(name).As<Napi::Number>().Uint32Value());
      if (err) ThrowErrno(env, "bpf_map__set_max_entries " + name, err);
    }
  }

  int err = bpf_object__load(obj);
  if (err) ThrowErrno(env, "bpf_object__load " + path, err, LibbpfLogTake());

  // Duplicate every fd first so a failure part way leaks nothing.
  std::vector<std::pair<std::string, int>> progFds, mapFds;
  auto dupOrThrow = [&](int src, const char* what) {
    int fd = fcntl(src, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      int e = errno;
      for (auto& x : progFds) close(x.second);
      for (auto& x : mapFds) close(x.second);
      ThrowErrno(env, what, e);
    }
    return fd;
  };
  struct bpf_program* p;
  bpf_object__for_each_program(p, obj) progFds.emplace_back(bpf_program__name(p), dupOrThrow(bpf_program__fd(p), "dup program fd"));
  struct bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    if (bpf_map__fd(m) < 0) continue;  // e.g. .rodata when absent
    mapFds.emplace_back(bpf_map__name(m), dupOrThrow(bpf_map__fd(m), "dup map fd"));
  }
  auto progs = Napi::Object::New(env);
  for (auto& x : progFds) progs.Set(x.first, x.second);
  auto maps = Napi::Object::New(env);
  for (auto& x : mapFds) maps.Set(x.first, x.second);
  auto out = Napi::Object::New(env);
  out.Set("programs", progs);
  out.Set("maps", maps);
  return out;
}

void InitObject(Napi::Env env, Napi::Object exports) {
  exports.Set("loadObject", Napi::Function::New(env, LoadObject, "loadObject"));
}

}  // namespace ward
