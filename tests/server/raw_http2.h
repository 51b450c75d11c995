// RawHttp2: a deliberately small HTTP/2 client on a plaintext loopback TCP connection, for tests
// that must send what no well-behaved gRPC client sends: request bodies that never complete,
// header blocks far over the advertised limit, streams reset as soon as they are opened, and
// connections that never send anything.
//
// It encodes header fields as HPACK literals (no indexing, no Huffman coding) and never decodes
// the peer's header blocks: it reports which streams got a HEADERS frame that ended them
// (trailers), RST_STREAM and GOAWAY error codes, the peer's SETTINGS, and whether the peer closed
// the connection. It answers SETTINGS and PING, honours the peer's flow-control windows and
// SETTINGS_MAX_FRAME_SIZE, and never sends END_STREAM unless asked to. 127.0.0.1 only.
//
// Not thread-safe: one test thread drives one RawHttp2.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace outreach::testing {

class RawHttp2 {
 public:
  using Headers = std::vector<std::pair<std::string, std::string>>;

  // HTTP/2 error codes this client reports (RFC 9113, section 7).
  static constexpr uint32_t kNoError = 0x0;
  static constexpr uint32_t kEnhanceYourCalm = 0xb;

  // Connects to 127.0.0.1:`port`. With `send_preface`, sends the client connection preface and an
  // empty SETTINGS frame at once; without it, sends nothing (a connection that stalls before
  // HTTP/2 starts).
  static absl::StatusOr<std::unique_ptr<RawHttp2>> Connect(int port, bool send_preface = true);

  RawHttp2(const RawHttp2&) = delete;
  RawHttp2& operator=(const RawHttp2&) = delete;
  ~RawHttp2();

  // Opens a stream: a POST to `path` with the gRPC request headers and then `extra`, as one
  // HEADERS frame followed by CONTINUATION frames of at most `max_fragment` bytes. Returns the
  // stream id, or UNAVAILABLE if the connection closed before the whole block was written within
  // `patience` (a peer that stops reading).
  absl::StatusOr<uint32_t> OpenStream(absl::string_view path, const Headers& extra = {},
                                      absl::Duration patience = absl::Seconds(10),
                                      std::size_t max_fragment = 16384);

  // Sends `bytes` of request body on `stream` (a gRPC length prefix is the caller's business), in
  // DATA frames without END_STREAM, as fast as the peer's windows allow, for at most `patience`.
  // Returns how many bytes were sent; fewer than asked if the windows stayed shut or the
  // connection closed.
  std::size_t SendData(uint32_t stream, absl::string_view bytes, absl::Duration patience);

  // The rapid-reset pattern (CVE-2023-44487): `count` new streams to `path`, each HEADERS
  // followed at once by RST_STREAM (CANCEL), written in batches of 100 pairs without waiting for
  // anything. Returns how many pairs were written before the connection closed or `patience`
  // passed.
  int RapidReset(absl::string_view path, int count, absl::Duration patience);

  // Sends RST_STREAM (CANCEL) for `stream`, without waiting.
  absl::Status ResetStream(uint32_t stream);

  // Reads and handles whatever the peer sends for `wait` (or until the connection closes).
  void Pump(absl::Duration wait);

  // What the peer has said so far.
  bool closed() const { return closed_; }
  bool got_goaway() const { return goaway_code_.has_value(); }
  uint32_t goaway_code() const { return goaway_code_.value_or(kNoError); }
  // The peer's SETTINGS values by identifier (e.g. 0x6, SETTINGS_MAX_HEADER_LIST_SIZE).
  const std::map<uint16_t, uint32_t>& peer_settings() const { return peer_settings_; }
  // Streams the peer ended with HEADERS (trailers, e.g. a gRPC status) or RST_STREAM.
  bool Ended(uint32_t stream) const {
    return trailers_.count(stream) > 0 || resets_.count(stream) > 0;
  }
  std::size_t streams_ended() const { return trailers_.size() + resets_.size(); }
  std::size_t header_bytes_written() const { return header_bytes_written_; }

 private:
  explicit RawHttp2(int fd) : fd_(fd) {}

  // Writes `bytes`, handling incoming frames while the socket is not writable; false if the
  // connection closed or `deadline` passed first.
  bool Write(absl::string_view bytes, absl::Time deadline);
  // Reads what is available (waiting at most until `deadline` for the first byte) and handles
  // every complete frame.
  void ReadSome(absl::Time deadline);
  void HandleFrame(uint8_t type, uint8_t flags, uint32_t stream, absl::string_view payload);
  void HandleSettings(uint8_t flags, absl::string_view payload);
  void SendFrame(uint8_t type, uint8_t flags, uint32_t stream, absl::string_view payload);

  int fd_;
  bool closed_ = false;
  uint32_t next_stream_ = 1;
  std::string in_;           // received bytes not yet handled
  std::string out_pending_;  // control frames (acks) to send with the next write
  std::optional<uint32_t> goaway_code_;
  std::map<uint16_t, uint32_t> peer_settings_;
  std::map<uint32_t, bool> trailers_;
  std::map<uint32_t, uint32_t> resets_;
  int64_t connection_window_ = 65535;
  int64_t initial_stream_window_ = 65535;
  std::map<uint32_t, int64_t> stream_windows_;
  std::size_t max_frame_ = 16384;
  std::size_t header_bytes_written_ = 0;
};

// A gRPC message's 5-byte prefix (uncompressed) announcing `length` bytes.
std::string GrpcMessagePrefix(uint32_t length);

// Reads /proc/`pid`/status: VmRSS or VmHWM ("VmRSS", "VmHWM") in KiB; -1 if unreadable.
int64_t ProcStatusKib(int pid, absl::string_view field);
// User plus system CPU time of `pid` so far, from /proc/`pid`/stat; negative if unreadable.
absl::Duration ProcCpuTime(int pid);

}  // namespace outreach::testing
