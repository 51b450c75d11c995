#include "store/event_codec.h"

#include <openssl/evp.h>

#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "store/keys.h"

namespace outreach::store {
namespace {

constexpr std::size_t kHeaderSize = 1 + 2 * kHashSize;

absl::Status Corrupt(uint64_t position, absl::string_view why) {
  return absl::DataLossError(absl::StrCat("event log: position ", position, ": ", why));
}

// Feeds every piece to one SHA-256 computation.
Hash Digest(std::initializer_list<absl::string_view> pieces) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                              &EVP_MD_CTX_free);
  Hash out{};
  unsigned int size = 0;
  // These calls fail only on allocation failure or a broken OpenSSL, neither recoverable here.
  if (ctx == nullptr || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) std::abort();
  for (absl::string_view piece : pieces) {
    if (EVP_DigestUpdate(ctx.get(), piece.data(), piece.size()) != 1) std::abort();
  }
  if (EVP_DigestFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &size) != 1 ||
      size != kHashSize) {
    std::abort();
  }
  return out;
}

}  // namespace

Hash ZeroHash() { return Hash{}; }

absl::string_view AsBytes(const Hash& hash) { return absl::string_view(hash.data(), hash.size()); }

bool HashFromBytes(absl::string_view bytes, Hash* hash) {
  if (bytes.size() != kHashSize) return false;
  std::memcpy(hash->data(), bytes.data(), kHashSize);
  return true;
}

Hash ChainHash(const Hash& prev_hash, uint64_t position, absl::string_view body) {
  const std::string key = keys::EncodeFixed64BE(position);
  return Digest({AsBytes(prev_hash), key, body});
}

Hash Sha256(absl::string_view bytes) { return Digest({bytes}); }

std::string EncodeEvent(const storage::v1::StoredEvent& event, const Hash& prev_hash_in,
                        Hash* hash) {
  const Hash prev_hash = prev_hash_in;  // `hash` may alias `prev_hash_in`: chaining in place
  std::string body;
  // Deterministic so that the same event always has the same bytes (and hash).
  {
    google::protobuf::io::StringOutputStream stream(&body);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    event.SerializeToCodedStream(&coded);
  }
  *hash = ChainHash(prev_hash, event.position(), body);
  std::string value;
  value.reserve(kHeaderSize + body.size());
  value.push_back(static_cast<char>(kEventFormatVersion));
  absl::StrAppend(&value, AsBytes(prev_hash));
  absl::StrAppend(&value, AsBytes(*hash));
  absl::StrAppend(&value, body);
  return value;
}

absl::StatusOr<DecodedEvent> DecodeEvent(uint64_t position, absl::string_view value) {
  if (value.empty()) return Corrupt(position, "empty value");
  const uint8_t format = static_cast<uint8_t>(value[0]);
  if (format != kEventFormatVersion) {
    return Corrupt(position, absl::StrCat("unknown envelope format_version ", format,
                                          " (this build reads ", kEventFormatVersion, ")"));
  }
  if (value.size() < kHeaderSize) {
    return Corrupt(position, absl::StrCat("value truncated to ", value.size(), " bytes"));
  }
  DecodedEvent decoded;
  decoded.position = position;
  HashFromBytes(value.substr(1, kHashSize), &decoded.prev_hash);
  HashFromBytes(value.substr(1 + kHashSize, kHashSize), &decoded.hash);
  decoded.body = std::string(value.substr(kHeaderSize));
  if (!decoded.event.ParseFromString(decoded.body)) {
    return Corrupt(position, "body is not a valid StoredEvent");
  }
  const uint32_t schema = decoded.event.schema_version();
  if (schema > kEventSchemaVersion) {
    return Corrupt(position, absl::StrCat("StoredEvent schema_version ", schema,
                                          " is newer than this build supports (",
                                          kEventSchemaVersion, ")"));
  }
  if (schema == 0) return Corrupt(position, "StoredEvent schema_version is missing");
  if (decoded.event.position() != position) {
    return Corrupt(position,
                   absl::StrCat("body says position ", decoded.event.position(), ", key says ",
                                position));
  }
  return decoded;
}

bool VerifyEventHash(const DecodedEvent& decoded) {
  return ChainHash(decoded.prev_hash, decoded.position, decoded.body) == decoded.hash;
}

v1::EventRecord ToEventRecord(const DecodedEvent& decoded) {
  const storage::v1::StoredEvent& e = decoded.event;
  v1::EventRecord record;
  record.set_position(e.position());
  record.set_task_id(e.task_id());
  record.set_version(e.version());
  record.set_event_id(e.event_id());
  if (e.has_recorded_at()) *record.mutable_recorded_at() = e.recorded_at();
  if (e.has_occurred_at()) *record.mutable_occurred_at() = e.occurred_at();
  record.set_actor(e.actor());
  record.set_request_id(e.request_id());
  switch (e.payload_case()) {
    case storage::v1::StoredEvent::kTaskCreated:
      *record.mutable_task_created() = e.task_created();
      break;
    case storage::v1::StoredEvent::kContactLogged:
      *record.mutable_contact_logged() = e.contact_logged();
      break;
    case storage::v1::StoredEvent::kTaskClosed:
      *record.mutable_task_closed() = e.task_closed();
      break;
    case storage::v1::StoredEvent::PAYLOAD_NOT_SET:
      break;
  }
  record.set_prev_hash(std::string(AsBytes(decoded.prev_hash)));
  record.set_hash(std::string(AsBytes(decoded.hash)));
  record.set_schema_version(e.schema_version());
  return record;
}

}  // namespace outreach::store
