// ebpf-napi: ward's binding to the system libbpf (see bpf/napi/index.ts for the typed surface).
#include "common.h"
#include "http-relay.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ward::InitMaps(env, exports);
  ward::InitObject(env, exports);
  ward::InitTc(env, exports);
  ward::InitRingbuf(env, exports);
  ward::InitSock(env, exports);
  ward::InitHttpRelay(env, exports);
  ward::InitHttpProbe(env, exports);
  return exports;
}

NODE_API_MODULE(ebpf_napi, Init)
