// See http-parse.h. The reasons are the texts the earlier TypeScript parser gave, word for word.
#include "http-parse.h"

#include <algorithm>
#include <cstring>

namespace ward::http {

namespace {

bool IsToken(uint8_t c) {
  static const auto table = [] {
    std::vector<bool> t(256, false);
    for (const char* p = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"; *p; p++) t[static_cast<uint8_t>(*p)] = true;
    return t;
  }();
  return table[c];
}

// What String.prototype.trim removes among latin1 bytes (CR and LF cannot occur in a line).
bool IsSpace(uint8_t c) { return c == 32 || c == 9 || c == 11 || c == 12 || c == 160; }

std::string_view View(const uint8_t* buf, size_t from, size_t to) { return {reinterpret_cast<const char*>(buf) + from, to - from}; }

std::string_view Trim(std::string_view v) {
  size_t a = 0, b = v.size();
  while (a < b && IsSpace(static_cast<uint8_t>(v[a]))) a++;
  while (b > a && IsSpace(static_cast<uint8_t>(v[b - 1]))) b--;
  return v.substr(a, b - a);
}

// Case-insensitive compare with a lower-case ASCII word ('-' and letters only).
bool NameIs(std::string_view name, const char* word) {
  size_t n = strlen(word);
  if (name.size() != n) return false;
  for (size_t i = 0; i < n; i++)
    if ((static_cast<uint8_t>(name[i]) | 0x20) != static_cast<uint8_t>(word[i])) return false;
  return true;
}

Result Fail(Error* err, int status, std::string reason) {
  err->status = status;
  err->reason = std::move(reason);
  return Result::Error;
}

struct Scanned {
  size_t start = 0;
  size_t startEnd = 0;
  size_t headBytes = 0;
  int hostCount = 0;
  std::string_view host;
  bool connectionClose = false;
  bool connectionKeepAlive = false;
  bool upgrade = false;
};

void ConnectionTokens(Scanned& h, std::string_view v) {
  size_t i = 0;
  while (i <= v.size()) {
    size_t e = v.find(',', i);
    if (e == std::string_view::npos) e = v.size();
    auto t = Trim(v.substr(i, e - i));
    if (NameIs(t, "close")) h.connectionClose = true;
    else if (NameIs(t, "keep-alive")) h.connectionKeepAlive = true;
    i = e + 1;
  }
}

// Finds the head, rejects anything ambiguous (bare CR/LF, NUL, DEL, obs-fold, bad names: 400;
// size and count limits: 431) and collects the framing, Host, Connection and Upgrade fields.
Result Scan(const uint8_t* buf, size_t len, const Limits& limits, std::vector<Header>* headers, Scratch& s, Scanned* h, Error* err) {
  // Tolerate (only) empty lines before a message, as RFC 9112 2.2 allows.
  size_t start = 0;
  while (start + 1 < len && buf[start] == 13 && buf[start + 1] == 10) start += 2;
  size_t maxLines = limits.maxHeaders + 2;
  if (s.lineEnds.size() < maxLines) s.lineEnds.resize(maxLines);
  size_t max = limits.maxHeadBytes;
  size_t n = std::min(len, max);
  size_t lines = 0;
  size_t lineStart = start;
  bool bad = false;
  long end = -1;
  for (size_t i = start; i < n; i++) {
    uint8_t c = buf[i];
    if (c > 13 && c != 127) continue;
    if (c == 13) {
      if (i + 1 >= len || buf[i + 1] != 10) {
        // A CR at the very end may still get its LF.
        if (i + 1 < len) bad = true;
        continue;
      }
      if (i == lineStart) {
        end = static_cast<long>(i) - 2;
        break;
      }
      if (lines < maxLines) s.lineEnds[lines++] = static_cast<uint32_t>(i);
      lineStart = i + 2;
      i++;
    } else if (c == 10 || c == 0 || c == 127) {
      bad = true;
    }
  }
  if (end < 0) return len > max ? Fail(err, 431, "head larger than " + std::to_string(max) + " bytes") : Result::Incomplete;
  if (static_cast<size_t>(end) + 4 > max) return Fail(err, 431, "head larger than " + std::to_string(max) + " bytes");
  if (bad) return Fail(err, 400, "invalid characters or line endings in head");
  *h = Scanned{};
  h->start = start;
  h->startEnd = s.lineEnds[0];
  h->headBytes = static_cast<size_t>(end) + 4;
  s.contentLength.clear();
  s.transferEncoding.clear();
  if (headers) headers->clear();
  size_t count = 0;
  for (size_t l = 1; l < lines; l++) {
    size_t ls = s.lineEnds[l - 1] + 2;
    size_t le = s.lineEnds[l];
    uint8_t first = buf[ls];
    if (first == 32 || first == 9) return Fail(err, 400, "obsolete header line folding");
    size_t colon = ls;
    bool token = true;
    while (colon < le && buf[colon] != 58) {
      if (!IsToken(buf[colon])) token = false;
      colon++;
    }
    if (colon == le || colon == ls) return Fail(err, 400, "header line without a name");
    if (!token) return Fail(err, 400, "invalid header name " + Quote(View(buf, ls, colon)));
    auto name = View(buf, ls, colon);
    auto value = Trim(View(buf, colon + 1, le));
    if (headers) headers->push_back({name, value});
    switch (name.size()) {
      case 4:
        if (NameIs(name, "host")) {
          if (h->hostCount++ == 0) h->host = value;
        }
        break;
      case 7:
        if (NameIs(name, "upgrade")) h->upgrade = true;
        break;
      case 10:
        if (NameIs(name, "connection")) ConnectionTokens(*h, value);
        break;
      case 14:
        if (NameIs(name, "content-length")) s.contentLength.push_back(value);
        break;
      case 17:
        if (NameIs(name, "transfer-encoding")) s.transferEncoding.push_back(value);
        break;
      default:
        break;
    }
    if (++count > limits.maxHeaders) return Fail(err, 431, "more than " + std::to_string(limits.maxHeaders) + " headers");
  }
  return Result::Ok;
}

bool Digits15(std::string_view v) {
  if (v.empty() || v.size() > 15) return false;
  for (char c : v)
    if (c < '0' || c > '9') return false;
  return true;
}

template <typename F>
void SplitComma(std::string_view v, F f) {
  size_t i = 0;
  for (;;) {
    size_t e = v.find(',', i);
    f(Trim(v.substr(i, e == std::string_view::npos ? std::string_view::npos : e - i)));
    if (e == std::string_view::npos) return;
    i = e + 1;
  }
}

// Body framing from Transfer-Encoding / Content-Length (RFC 9112 6.3); smuggling shapes are errors.
bool BodyFraming(const Scratch& s, Framing* f, uint64_t* length, std::string* err) {
  *length = 0;
  if (!s.transferEncoding.empty()) {
    if (!s.contentLength.empty()) return *err = "both Transfer-Encoding and Content-Length", false;
    std::vector<std::string> te;
    for (auto v : s.transferEncoding)
      SplitComma(v, [&](std::string_view t) {
        if (t.empty()) return;
        std::string lower(t);
        for (auto& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
        te.push_back(lower);
      });
    if (te.size() != 1 || te[0] != "chunked") {
      std::string joined;
      for (size_t i = 0; i < te.size(); i++) joined += (i ? ", " : "") + te[i];
      return *err = "unsupported Transfer-Encoding " + Quote(joined), false;
    }
    *f = Framing::Chunked;
    return true;
  }
  if (s.contentLength.empty()) {
    *f = Framing::None;
    return true;
  }
  std::string_view v;
  if (s.contentLength.size() == 1 && Digits15(s.contentLength[0])) {
    v = s.contentLength[0];
  } else {
    bool first = true, conflict = false;
    for (auto cl : s.contentLength)
      SplitComma(cl, [&](std::string_view t) {
        if (first) v = t, first = false;
        else if (t != v) conflict = true;
      });
    if (conflict) return *err = "conflicting Content-Length values", false;
    if (!Digits15(v)) return *err = "invalid Content-Length " + Quote(v), false;
  }
  uint64_t n = 0;
  for (char c : v) n = n * 10 + static_cast<uint64_t>(c - '0');
  *f = n == 0 ? Framing::None : Framing::Length;
  *length = n;
  return true;
}

bool WantsClose(bool v11, const Scanned& h) { return v11 ? h.connectionClose : !h.connectionKeepAlive; }

// "HTTP/1.0" or "HTTP/1.1" at buf[i, i+8): 0 = 1.0, 1 = 1.1, -1 otherwise.
int VersionAt(const uint8_t* buf, size_t len, size_t i) {
  if (i + 8 > len || memcmp(buf + i, "HTTP/1.", 7) != 0) return -1;
  return buf[i + 7] == '0' ? 0 : buf[i + 7] == '1' ? 1 : -1;
}

bool StartsWithCi(std::string_view s, const char* p) {
  size_t n = strlen(p);
  if (s.size() < n) return false;
  for (size_t i = 0; i < n; i++)
    if (static_cast<char>(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]) != p[i]) return false;
  return true;
}

// The path policy matches: origin form as is, absolute form's path; without query or fragment.
bool TargetPath(std::string_view method, std::string_view target, std::string* path) {
  std::string p;
  if (!target.empty() && target[0] == '/') {
    p.assign(target);
  } else if (StartsWithCi(target, "http://") || StartsWithCi(target, "https://")) {
    // Absolute form: policy still matches the path (and the authority stands for Host).
    size_t i = target.find("://") + 3;
    while (i < target.size() && target[i] != '/' && target[i] != '?' && target[i] != '#') i++;
    auto rest = target.substr(i);
    p = rest.empty() || rest[0] == '?' ? "/" + std::string(rest) : std::string(rest);
  } else if (target == "*" && method == "OPTIONS") {
    p = "*";
  } else if (method == "CONNECT") {
    p.assign(target);
  } else {
    return false;
  }
  size_t cut = p.find_first_of("?#");
  if (cut != std::string::npos) p.resize(cut);
  *path = std::move(p);
  return true;
}

}  // namespace

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20) {
      char b[8];
      snprintf(b, sizeof(b), "\\u%04x", c);
      out += b;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      out += static_cast<char>(0xc0 | (c >> 6));
      out += static_cast<char>(0x80 | (c & 0x3f));
    }
  }
  return out + "\"";
}

Result ParseRequest(const uint8_t* buf, size_t len, const Limits& limits, bool withHeaders, Scratch& s, RequestHead* out, Error* err) {
  Scanned h;
  Result r = Scan(buf, len, limits, withHeaders ? &out->headers : nullptr, s, &h, err);
  if (r != Result::Ok) return r;
  if (!withHeaders) out->headers.clear();
  // "<token> <target without spaces> HTTP/1.x"
  auto line = View(buf, h.start, h.startEnd);
  size_t sp1 = 0;
  while (sp1 < line.size() && IsToken(static_cast<uint8_t>(line[sp1]))) sp1++;
  size_t sp2 = sp1 + 1;
  while (sp2 < line.size() && line[sp2] != ' ') sp2++;
  int version = -1;
  if (sp1 > 0 && sp1 < line.size() && line[sp1] == ' ' && sp2 > sp1 + 1 && line.size() - sp2 == 9) version = VersionAt(buf, len, h.start + sp2 + 1);
  if (version < 0) {
    // Not that shape: say why (a non-token method, an HTTP version other than 1.x, or neither).
    size_t a = line.find(' ');
    size_t b = a == std::string_view::npos ? a : line.find(' ', a + 1);
    bool shape = a != std::string_view::npos && a > 0 && b != std::string_view::npos && b > a + 1;
    auto rest = shape ? line.substr(b + 1) : std::string_view();
    bool http = shape && rest.size() > 5 && rest.substr(0, 5) == "HTTP/" && rest[5] >= '0' && rest[5] <= '9';
    bool v1x = http && (rest == "HTTP/1.0" || rest == "HTTP/1.1") && line.find(' ', b + 1) == std::string_view::npos;
    if (v1x) return Fail(err, 400, "invalid method " + Quote(line.substr(0, a)));
    if (http) return Fail(err, 505, "only HTTP/1.0 and HTTP/1.1 are supported");
    return Fail(err, 400, "malformed request line");
  }
  out->method = line.substr(0, sp1);
  out->target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  out->v11 = version == 1;
  if (h.hostCount > 1) return Fail(err, 400, "more than one Host header");
  if (out->v11 && h.hostCount == 0) return Fail(err, 400, "HTTP/1.1 request without Host");
  if (!TargetPath(out->method, out->target, &out->path)) return Fail(err, 400, "invalid request target " + Quote(out->target));
  std::string ferr;
  if (!BodyFraming(s, &out->framing, &out->length, &ferr)) return Fail(err, 400, ferr);
  out->hasHost = h.hostCount > 0;
  out->host = h.host;
  out->upgrade = out->method == "CONNECT" || h.upgrade;
  out->close = WantsClose(out->v11, h);
  out->headBytes = h.headBytes;
  return Result::Ok;
}

Result ParseResponse(const uint8_t* buf, size_t len, const Limits& limits, Scratch& s, ResponseHead* out, Error* err) {
  Scanned h;
  Result r = Scan(buf, len, limits, nullptr, s, &h, err);
  if (r == Result::Error) err->status = 502;
  if (r != Result::Ok) return r;
  // "HTTP/1.x NNN" and then nothing or a space and a reason phrase.
  size_t st = h.start;
  int version = h.startEnd - st >= 12 ? VersionAt(buf, len, st) : -1;
  auto digit = [&](size_t i) { return buf[i] >= '0' && buf[i] <= '9'; };
  if (version < 0 || buf[st + 8] != ' ' || !digit(st + 9) || !digit(st + 10) || !digit(st + 11) || (h.startEnd > st + 12 && buf[st + 12] != ' '))
    return Fail(err, 502, "malformed status line");
  out->status = (buf[st + 9] - '0') * 100 + (buf[st + 10] - '0') * 10 + (buf[st + 11] - '0');
  out->close = WantsClose(version == 1, h);
  out->headBytes = h.headBytes;
  out->hasContentLength = !s.contentLength.empty();
  out->framingError.clear();
  if (!BodyFraming(s, &out->framing, &out->length, &out->framingError)) out->framing = Framing::None;
  return Result::Ok;
}

bool ResponseFraming(const ResponseHead& h, bool headRequest, Framing* f, uint64_t* length, std::string* err) {
  *length = 0;
  if (headRequest || (h.status >= 100 && h.status < 200) || h.status == 204 || h.status == 304) {
    *f = Framing::None;
    return true;
  }
  if (!h.framingError.empty()) return *err = h.framingError, false;
  *f = h.framing == Framing::None && !h.hasContentLength ? Framing::Close : h.framing;
  *length = h.length;
  return true;
}

// ---- BodyFramer

constexpr size_t kMaxChunkLine = 4096;

void BodyFramer::Reset(Framing f, uint64_t length) {
  framing_ = f;
  remaining_ = f == Framing::Length ? length : 0;
  state_ = f == Framing::None ? State::Done : f == Framing::Chunked ? State::Size : State::Data;
  line_.clear();
  error_.clear();
}

size_t BodyFramer::Consume(const uint8_t* buf, size_t len) {
  if (state_ == State::Done || failed()) return 0;
  if (framing_ == Framing::Close) return len;
  if (framing_ == Framing::Length) {
    uint64_t n = std::min<uint64_t>(remaining_, len);
    remaining_ -= n;
    if (remaining_ == 0) state_ = State::Done;
    return static_cast<size_t>(n);
  }
  return ConsumeChunked(buf, len);
}

namespace {
// ^([0-9A-Fa-f]{1,12})(?:[ \t]*;.*)?$ with '.' not matching CR.
bool ChunkSize(const std::string& line, uint64_t* size) {
  size_t i = 0;
  uint64_t v = 0;
  while (i < line.size() && i < 13 && isxdigit(static_cast<unsigned char>(line[i]))) {
    char c = line[i];
    v = v * 16 + static_cast<uint64_t>(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    i++;
  }
  if (i == 0 || i > 12) return false;
  if (i < line.size()) {
    size_t j = i;
    while (j < line.size() && (line[j] == ' ' || line[j] == '\t')) j++;
    if (j >= line.size() || line[j] != ';') return false;
    if (line.find('\r', j) != std::string::npos) return false;
  }
  *size = v;
  return true;
}
}  // namespace

size_t BodyFramer::ConsumeChunked(const uint8_t* buf, size_t len) {
  size_t i = 0;
  while (i < len && state_ != State::Done) {
    if (state_ == State::Data) {
      uint64_t n = std::min<uint64_t>(remaining_, len - i);
      remaining_ -= n;
      i += static_cast<size_t>(n);
      if (remaining_ == 0) state_ = State::DataCrlf;
      continue;
    }
    // Line-oriented states: size line, CRLF after data, trailer lines.
    auto nl = static_cast<const uint8_t*>(memchr(buf + i, '\n', len - i));
    size_t end = nl ? static_cast<size_t>(nl - buf) + 1 : len;
    line_.append(reinterpret_cast<const char*>(buf + i), end - i);
    i = end;
    if (line_.size() > kMaxChunkLine) return error_ = "chunk line too long", i;
    if (!nl) break;
    if (line_.size() < 2 || line_[line_.size() - 2] != '\r') return error_ = "bare LF in chunked body", i;
    line_.resize(line_.size() - 2);
    if (state_ == State::DataCrlf) {
      if (!line_.empty()) return error_ = "missing CRLF after chunk data", i;
      state_ = State::Size;
    } else if (state_ == State::Size) {
      uint64_t size = 0;
      if (!ChunkSize(line_, &size)) return error_ = "invalid chunk size line " + Quote(std::string_view(line_).substr(0, 40)), i;
      remaining_ = size;
      state_ = size == 0 ? State::Trailer : State::Data;
    } else if (line_.empty()) {
      state_ = State::Done;
    }
    line_.clear();
  }
  return i;
}

// ---- ResponseFramer

void ResponseFramer::Reset() {
  started_ = done_ = close_ = untilEnd_ = chunkedBody_ = false;
  remaining_ = 0;
  error_.clear();
}

size_t ResponseFramer::Fail(std::string reason, size_t pos) {
  error_ = std::move(reason);
  return pos;
}

size_t ResponseFramer::Feed(const uint8_t* buf, size_t len, size_t pos, bool headRequest) {
  done_ = false;
  while (!started_) {
    if (pos >= len) return pos;
    Error err;
    Result r = ParseResponse(buf + pos, len - pos, kResponseLimits, scratch_, &head_, &err);
    if (r == Result::Incomplete) return pos;
    if (r == Result::Error) return Fail("bad upstream response: " + err.reason, pos);
    Framing f;
    uint64_t length;
    std::string ferr;
    if (!ResponseFraming(head_, headRequest, &f, &length, &ferr)) return Fail("bad upstream response: " + ferr, pos);
    if (head_.status == 101) return Fail("upstream switched protocols without an upgrade request", pos);
    pos += head_.headBytes;
    if (head_.status < 200) continue;
    started_ = true;
    close_ = head_.close || f == Framing::Close;
    untilEnd_ = f == Framing::Close;
    remaining_ = f == Framing::Length ? length : 0;
    chunkedBody_ = f == Framing::Chunked;
    if (chunkedBody_) chunked_.Reset(Framing::Chunked, 0);
  }
  if (chunkedBody_) {
    size_t n = chunked_.Consume(buf + pos, len - pos);
    if (chunked_.failed()) return Fail("bad upstream body: " + chunked_.error(), pos);
    pos += n;
    if (!chunked_.done()) return pos;
  } else if (untilEnd_) {
    return len;
  } else {
    uint64_t n = std::min<uint64_t>(remaining_, len - pos);
    remaining_ -= n;
    pos += static_cast<size_t>(n);
    if (remaining_ > 0) return pos;
  }
  started_ = false;
  chunkedBody_ = false;
  done_ = true;
  return pos;
}

}  // namespace ward::http
