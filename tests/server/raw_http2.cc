#include "tests/server/raw_http2.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"

namespace outreach::testing {
namespace {

constexpr absl::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
enum FrameType : uint8_t {
  kData = 0x0,
  kHeaders = 0x1,
  kRstStream = 0x3,
  kSettings = 0x4,
  kPing = 0x6,
  kGoaway = 0x7,
  kWindowUpdate = 0x8,
  kContinuation = 0x9,
};
constexpr uint8_t kEndStream = 0x1;
constexpr uint8_t kAck = 0x1;
constexpr uint8_t kEndHeaders = 0x4;
constexpr uint16_t kInitialWindowSize = 0x4;
constexpr uint16_t kMaxFrameSize = 0x5;

void PutBigEndian(std::string* out, uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}
uint32_t GetBigEndian(absl::string_view in, int bytes) {
  uint32_t value = 0;
  for (int i = 0; i < bytes; ++i) value = (value << 8) | static_cast<uint8_t>(in[i]);
  return value;
}

// HPACK integer with a 7-bit prefix (RFC 7541, 5.1), H bit clear.
void PutHpackLength(std::string* out, std::size_t value) {
  if (value < 127) {
    out->push_back(static_cast<char>(value));
    return;
  }
  out->push_back(static_cast<char>(127));
  value -= 127;
  while (value >= 128) {
    out->push_back(static_cast<char>((value % 128) + 128));
    value /= 128;
  }
  out->push_back(static_cast<char>(value));
}

// "Literal Header Field without Indexing -- New Name" (RFC 7541, 6.2.2).
void PutLiteral(std::string* out, absl::string_view name, absl::string_view value) {
  out->push_back('\0');
  PutHpackLength(out, name.size());
  out->append(name.data(), name.size());
  PutHpackLength(out, value.size());
  out->append(value.data(), value.size());
}

std::string Frame(uint8_t type, uint8_t flags, uint32_t stream, absl::string_view payload) {
  std::string frame;
  PutBigEndian(&frame, payload.size(), 3);
  frame.push_back(static_cast<char>(type));
  frame.push_back(static_cast<char>(flags));
  PutBigEndian(&frame, stream & 0x7fffffff, 4);
  frame.append(payload.data(), payload.size());
  return frame;
}

}  // namespace

std::string GrpcMessagePrefix(uint32_t length) {
  std::string prefix(1, '\0');
  PutBigEndian(&prefix, length, 4);
  return prefix;
}

absl::StatusOr<std::unique_ptr<RawHttp2>> RawHttp2::Connect(int port, bool send_preface) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: errno ", errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    const int error = errno;
    close(fd);
    return absl::UnavailableError(absl::StrCat("connect to port ", port, ": errno ", error));
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::unique_ptr<RawHttp2> connection(new RawHttp2(fd));
  if (send_preface) {
    std::string hello(kPreface);
    hello += Frame(kSettings, 0, 0, "");
    if (!connection->Write(hello, absl::Now() + absl::Seconds(5))) {
      return absl::UnavailableError("connection closed during the preface");
    }
  }
  return connection;
}

RawHttp2::~RawHttp2() { close(fd_); }

absl::StatusOr<uint32_t> RawHttp2::OpenStream(absl::string_view path, const Headers& extra,
                                              absl::Duration patience, std::size_t max_fragment) {
  std::string block;
  PutLiteral(&block, ":method", "POST");
  PutLiteral(&block, ":scheme", "http");
  PutLiteral(&block, ":path", path);
  PutLiteral(&block, ":authority", "127.0.0.1");
  PutLiteral(&block, "content-type", "application/grpc");
  PutLiteral(&block, "te", "trailers");
  for (const auto& [name, value] : extra) PutLiteral(&block, name, value);
  const uint32_t stream = next_stream_;
  next_stream_ += 2;
  stream_windows_[stream] = initial_stream_window_;
  const absl::Time deadline = absl::Now() + patience;
  const std::size_t fragment = std::min(max_fragment, max_frame_);
  std::size_t offset = 0;
  do {
    const std::size_t size = std::min(fragment, block.size() - offset);
    const bool last = offset + size == block.size();
    const uint8_t type = offset == 0 ? kHeaders : kContinuation;
    if (!Write(Frame(type, last ? kEndHeaders : 0, stream, block.substr(offset, size)), deadline)) {
      return absl::UnavailableError(
          absl::StrCat("header block refused after ", header_bytes_written_, " bytes"));
    }
    header_bytes_written_ += size;
    offset += size;
  } while (offset < block.size());
  return stream;
}

std::size_t RawHttp2::SendData(uint32_t stream, absl::string_view bytes, absl::Duration patience) {
  const absl::Time deadline = absl::Now() + patience;
  std::size_t sent = 0;
  while (sent < bytes.size() && !closed_ && absl::Now() < deadline) {
    const int64_t window = std::min(connection_window_, stream_windows_[stream]);
    if (window <= 0) {
      ReadSome(std::min(deadline, absl::Now() + absl::Milliseconds(50)));
      continue;
    }
    const std::size_t size = std::min({bytes.size() - sent, max_frame_, std::size_t(window)});
    if (!Write(Frame(kData, 0, stream, bytes.substr(sent, size)), deadline)) break;
    connection_window_ -= static_cast<int64_t>(size);
    stream_windows_[stream] -= static_cast<int64_t>(size);
    sent += size;
  }
  return sent;
}

int RawHttp2::RapidReset(absl::string_view path, int count, absl::Duration patience) {
  std::string block;
  PutLiteral(&block, ":method", "POST");
  PutLiteral(&block, ":scheme", "http");
  PutLiteral(&block, ":path", path);
  PutLiteral(&block, ":authority", "127.0.0.1");
  PutLiteral(&block, "content-type", "application/grpc");
  PutLiteral(&block, "te", "trailers");
  std::string cancel;
  PutBigEndian(&cancel, 0x8, 4);
  const absl::Time deadline = absl::Now() + patience;
  int written = 0;
  while (written < count) {
    std::string batch;
    const int pairs = std::min(100, count - written);
    for (int i = 0; i < pairs; ++i) {
      const uint32_t stream = next_stream_;
      next_stream_ += 2;
      batch += Frame(kHeaders, kEndHeaders, stream, block);
      batch += Frame(kRstStream, 0, stream, cancel);
    }
    if (!Write(batch, deadline)) break;
    written += pairs;
  }
  return written;
}

absl::Status RawHttp2::ResetStream(uint32_t stream) {
  std::string code;
  PutBigEndian(&code, 0x8, 4);  // CANCEL
  if (!Write(Frame(kRstStream, 0, stream, code), absl::Now() + absl::Seconds(5))) {
    return absl::UnavailableError("connection closed");
  }
  return absl::OkStatus();
}

void RawHttp2::Pump(absl::Duration wait) {
  const absl::Time deadline = absl::Now() + wait;
  while (!closed_ && absl::Now() < deadline) ReadSome(deadline);
}

bool RawHttp2::Write(absl::string_view bytes, absl::Time deadline) {
  std::string buffer = std::move(out_pending_);
  out_pending_.clear();
  buffer.append(bytes.data(), bytes.size());
  absl::string_view rest = buffer;
  while (!rest.empty()) {
    if (closed_) return false;
    const ssize_t n = send(fd_, rest.data(), rest.size(), MSG_NOSIGNAL);
    if (n > 0) {
      rest.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      closed_ = true;
      return false;
    }
    if (absl::Now() >= deadline) return false;
    pollfd p{fd_, POLLIN | POLLOUT, 0};
    poll(&p, 1, 50);
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) ReadSome(absl::Now());
  }
  return true;
}

void RawHttp2::ReadSome(absl::Time deadline) {
  pollfd p{fd_, POLLIN, 0};
  const int64_t wait_ms = std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now()));
  if (poll(&p, 1, static_cast<int>(std::min<int64_t>(wait_ms, 1000))) <= 0) return;
  char chunk[65536];
  while (true) {
    const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) {
      in_.append(chunk, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) closed_ = true;
    break;
  }
  absl::string_view rest = in_;
  while (rest.size() >= 9) {
    const uint32_t length = GetBigEndian(rest, 3);
    if (rest.size() < 9 + length) break;
    HandleFrame(static_cast<uint8_t>(rest[3]), static_cast<uint8_t>(rest[4]),
                GetBigEndian(rest.substr(5), 4) & 0x7fffffff, rest.substr(9, length));
    rest.remove_prefix(9 + length);
  }
  in_.erase(0, in_.size() - rest.size());
  if (!out_pending_.empty() && !closed_) {
    const ssize_t n = send(fd_, out_pending_.data(), out_pending_.size(), MSG_NOSIGNAL);
    if (n > 0) out_pending_.erase(0, static_cast<std::size_t>(n));
  }
}

void RawHttp2::HandleFrame(uint8_t type, uint8_t flags, uint32_t stream,
                           absl::string_view payload) {
  switch (type) {
    case kHeaders:
    case kContinuation:
      if (flags & kEndStream) trailers_[stream] = true;
      break;
    case kRstStream:
      if (payload.size() >= 4) resets_[stream] = GetBigEndian(payload, 4);
      break;
    case kSettings:
      HandleSettings(flags, payload);
      break;
    case kPing:
      if (!(flags & kAck)) out_pending_ += Frame(kPing, kAck, 0, payload);
      break;
    case kGoaway:
      if (payload.size() >= 8) goaway_code_ = GetBigEndian(payload.substr(4), 4);
      break;
    case kWindowUpdate:
      if (payload.size() >= 4) {
        const int64_t increment = GetBigEndian(payload, 4) & 0x7fffffff;
        (stream == 0 ? connection_window_ : stream_windows_[stream]) += increment;
      }
      break;
    default:
      break;  // DATA and anything else: nothing to track
  }
}

void RawHttp2::HandleSettings(uint8_t flags, absl::string_view payload) {
  if (flags & kAck) return;
  for (std::size_t i = 0; i + 6 <= payload.size(); i += 6) {
    const uint16_t id = static_cast<uint16_t>(GetBigEndian(payload.substr(i), 2));
    const uint32_t value = GetBigEndian(payload.substr(i + 2), 4);
    peer_settings_[id] = value;
    if (id == kInitialWindowSize) {
      const int64_t delta = int64_t{value} - initial_stream_window_;
      for (auto& [unused, window] : stream_windows_) window += delta;
      initial_stream_window_ = value;
    }
    if (id == kMaxFrameSize) max_frame_ = value;
  }
  out_pending_ += Frame(kSettings, kAck, 0, "");
}

int64_t ProcStatusKib(int pid, absl::string_view field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, absl::StrCat(field, ":"))) continue;
    std::vector<absl::string_view> parts =
        absl::StrSplit(line.substr(field.size() + 1), ' ', absl::SkipWhitespace());
    int64_t kib = -1;
    if (!parts.empty() && absl::SimpleAtoi(parts[0], &kib)) return kib;
  }
  return -1;
}

absl::Duration ProcCpuTime(int pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::stringstream text;
  text << in.rdbuf();
  const std::string stat = text.str();
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const std::size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return -absl::Seconds(1);
  std::vector<absl::string_view> fields =
      absl::StrSplit(absl::string_view(stat).substr(paren + 2), ' ', absl::SkipWhitespace());
  int64_t utime = 0;
  int64_t stime = 0;
  // utime and stime are fields 14 and 15 of stat, 12 and 13 counted from the state (field 3).
  if (fields.size() < 13 || !absl::SimpleAtoi(fields[11], &utime) ||
      !absl::SimpleAtoi(fields[12], &stime)) {
    return -absl::Seconds(1);
  }
  return absl::Seconds(static_cast<double>(utime + stime) / sysconf(_SC_CLK_TCK));
}

}  // namespace outreach::testing
