// The HTTP parser of the native L7 data path (http-parse.h), callable from JS for its tests:
// the same inputs and answers the relay works with, without sockets.
#include "common.h"
#include "http-parse.h"

namespace ward {

namespace {

Napi::Object Failure(Napi::Env env, const http::Error& e) {
  auto o = Napi::Object::New(env);
  o.Set("kind", "error");
  o.Set("status", e.status);
  o.Set("reason", e.reason);
  return o;
}

Napi::Object Ok(Napi::Env env, Napi::Object head) {
  auto o = Napi::Object::New(env);
  o.Set("kind", "ok");
  o.Set("head", head);
  return o;
}

Napi::Object Incomplete(Napi::Env env) {
  auto o = Napi::Object::New(env);
  o.Set("kind", "incomplete");
  return o;
}

Napi::String Latin1(Napi::Env env, std::string_view s) {
  napi_value v;
  napi_create_string_latin1(env, s.data(), s.size(), &v);
  return Napi::String(env, v);
}

Napi::Object FramingObject(Napi::Env env, http::Framing f, uint64_t length) {
  auto o = Napi::Object::New(env);
  const char* kinds[] = {"none", "length", "chunked", "close"};
  o.Set("kind", kinds[static_cast<int>(f)]);
  if (f == http::Framing::Length) o.Set("length", static_cast<double>(length));
  return o;
}

// httpParseRequest(bytes, withHeaders) -> {kind: 'incomplete'} | {kind: 'error', status, reason} | {kind: 'ok', head}
Napi::Value ParseRequest(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  size_t len = 0;
  uint8_t* buf = ArgBytes(info, 0, &len);
  bool withHeaders = info[1].ToBoolean().Value();
  http::Scratch scratch;
  http::RequestHead h;
  http::Error err;
  auto r = http::ParseRequest(buf, len, http::kRequestLimits, withHeaders, scratch, &h, &err);
  if (r == http::Result::Incomplete) return Incomplete(env);
  if (r == http::Result::Error) return Failure(env, err);
  auto head = Napi::Object::New(env);
  head.Set("method", Latin1(env, h.method));
  head.Set("path", Latin1(env, h.path));
  head.Set("target", Latin1(env, h.target));
  head.Set("version", h.v11 ? "1.1" : "1.0");
  if (h.hasHost) head.Set("host", Latin1(env, h.host));
  auto headers = Napi::Array::New(env, h.headers.size());
  for (uint32_t i = 0; i < h.headers.size(); i++) {
    auto pair = Napi::Array::New(env, 2);
    pair.Set(0u, Latin1(env, h.headers[i].name));
    pair.Set(1u, Latin1(env, h.headers[i].value));
    headers.Set(i, pair);
  }
  head.Set("headers", headers);
  head.Set("framing", FramingObject(env, h.framing, h.length));
  head.Set("close", h.close);
  head.Set("upgrade", h.upgrade);
  head.Set("headBytes", static_cast<double>(h.headBytes));
  return Ok(env, head);
}

// httpParseResponse(bytes, requestMethod) -> ... {kind: 'ok', head: {status, close, headBytes, framing | framingError}}
Napi::Value ParseResponse(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  size_t len = 0;
  uint8_t* buf = ArgBytes(info, 0, &len);
  std::string method = ArgString(info, 1);
  http::Scratch scratch;
  http::ResponseHead h;
  http::Error err;
  auto r = http::ParseResponse(buf, len, http::kResponseLimits, scratch, &h, &err);
  if (r == http::Result::Incomplete) return Incomplete(env);
  if (r == http::Result::Error) return Failure(env, err);
  auto head = Napi::Object::New(env);
  head.Set("status", h.status);
  head.Set("close", h.close);
  head.Set("headBytes", static_cast<double>(h.headBytes));
  http::Framing f;
  uint64_t length;
  std::string ferr;
  if (http::ResponseFraming(h, method == "HEAD", &f, &length, &ferr)) head.Set("framing", FramingObject(env, f, length));
  else head.Set("framingError", ferr);
  return Ok(env, head);
}

// httpFrameBody('length' | 'chunked', length, chunks) -> [{consumed, done, error?}] per chunk, fed in turn.
Napi::Value FrameBody(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  std::string kind = ArgString(info, 0);
  if (kind != "length" && kind != "chunked") ThrowType(env, "httpFrameBody: kind must be 'length' or 'chunked'");
  uint64_t length = info[1].IsNumber() ? static_cast<uint64_t>(info[1].As<Napi::Number>().Int64Value()) : 0;
  if (!info[2].IsArray()) ThrowType(env, "httpFrameBody: chunks must be an array of Buffers");
  auto chunks = info[2].As<Napi::Array>();
  http::BodyFramer f;
  f.Reset(kind == "length" ? http::Framing::Length : http::Framing::Chunked, length);
  auto out = Napi::Array::New(env, chunks.Length());
  for (uint32_t i = 0; i < chunks.Length(); i++) {
    auto v = chunks.Get(i);
    if (!v.IsTypedArray()) ThrowType(env, "httpFrameBody: chunks must be an array of Buffers");
    auto b = v.As<Napi::Uint8Array>();
    size_t n = f.Consume(b.Data(), b.ByteLength());
    auto step = Napi::Object::New(env);
    step.Set("consumed", static_cast<double>(n));
    step.Set("done", f.done());
    if (f.failed()) step.Set("error", f.error());
    out.Set(i, step);
  }
  return out;
}

}  // namespace

void InitHttpProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("httpParseRequest", Napi::Function::New(env, ParseRequest, "httpParseRequest"));
  exports.Set("httpParseResponse", Napi::Function::New(env, ParseResponse, "httpParseResponse"));
  exports.Set("httpFrameBody", Napi::Function::New(env, FrameBody, "httpFrameBody"));
}

}  // namespace ward
