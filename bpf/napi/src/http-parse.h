// HTTP/1.x message heads and body framing for the native L7 data path (http-relay.cc), parsed
// strictly from bytes: the relay forwards the original bytes, so parsing only has to decide,
// never to re-serialise. Anything ambiguous is an error: a request the proxy cannot judge must
// never pass. No N-API here (http-probe.cc exposes it to tests).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ward::http {

struct Limits {
  size_t maxHeadBytes;
  size_t maxHeaders;
};

constexpr Limits kRequestLimits{16 * 1024, 100};
constexpr Limits kResponseLimits{64 * 1024, 200};

enum class Framing : uint8_t { None, Length, Chunked, Close };

enum class Result : uint8_t { Incomplete, Error, Ok };

struct Header {
  std::string_view name;
  std::string_view value;
};

struct Error {
  int status = 0;
  std::string reason;
};

// Views point into the parsed buffer: valid while it is.
struct RequestHead {
  std::string_view method;
  std::string_view target;
  // Without query or fragment (what policy matches); may differ from target (absolute form).
  std::string path;
  bool v11 = true;
  bool hasHost = false;
  std::string_view host;
  std::vector<Header> headers;  // filled only when asked for
  Framing framing = Framing::None;
  uint64_t length = 0;
  bool close = false;
  bool upgrade = false;
  size_t headBytes = 0;
};

struct ResponseHead {
  int status = 0;
  bool close = false;
  size_t headBytes = 0;
  bool hasContentLength = false;
  // Framing from Content-Length / Transfer-Encoding alone; framingError set when ambiguous.
  Framing framing = Framing::None;
  uint64_t length = 0;
  std::string framingError;
};

// Reusable scratch of one parser user (no allocation per message once warm).
struct Scratch {
  std::vector<uint32_t> lineEnds;
  std::vector<std::string_view> contentLength;
  std::vector<std::string_view> transferEncoding;
};

Result ParseRequest(const uint8_t* buf, size_t len, const Limits& limits, bool withHeaders, Scratch& s, RequestHead* out, Error* err);
Result ParseResponse(const uint8_t* buf, size_t len, const Limits& limits, Scratch& s, ResponseHead* out, Error* err);

// Response framing given the request method: HEAD, 1xx, 204 and 304 carry no body (RFC 9112 6.3);
// no length at all means until close. Returns false (reason in *err) when ambiguous.
bool ResponseFraming(const ResponseHead& h, bool headRequest, Framing* f, uint64_t* length, std::string* err);

// Where a body ends in a byte stream, without copying it: Content-Length, chunked (sizes,
// extensions, trailers), or until close.
class BodyFramer {
 public:
  void Reset(Framing f, uint64_t length);
  // Bytes of buf[0, len) that belong to the body; sets error() when malformed.
  size_t Consume(const uint8_t* buf, size_t len);
  bool done() const { return state_ == State::Done; }
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

 private:
  enum class State : uint8_t { Size, Data, DataCrlf, Trailer, Done };
  size_t ConsumeChunked(const uint8_t* buf, size_t len);
  Framing framing_ = Framing::None;
  State state_ = State::Done;
  uint64_t remaining_ = 0;
  std::string line_;
  std::string error_;
};

// Finds where each response ends in the upstream stream (status line and framing only), one at
// a time in request order; interim 1xx answers are passed over (forwarded with the final one).
class ResponseFramer {
 public:
  // Frames buf[pos, len) for a request (HEAD or not); returns where it stopped: the end of a
  // final response (done()), the end of buf, or the start of malformed bytes (failed()).
  size_t Feed(const uint8_t* buf, size_t len, size_t pos, bool headRequest);
  bool started() const { return started_; }
  bool done() const { return done_; }
  bool close() const { return close_; }
  bool untilClose() const { return started_ && untilEnd_; }
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  void Reset();

 private:
  size_t Fail(std::string reason, size_t pos);
  bool started_ = false;
  bool done_ = false;
  bool close_ = false;
  bool untilEnd_ = false;
  bool chunkedBody_ = false;
  uint64_t remaining_ = 0;
  BodyFramer chunked_;
  Scratch scratch_;
  ResponseHead head_;
  std::string error_;
};

// JSON.stringify of a latin1 string (how reasons quote what they name), UTF-8 encoded.
std::string Quote(std::string_view s);

}  // namespace ward::http
