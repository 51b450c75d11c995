#include "store/event_codec.h"

#include <openssl/evp.h>

#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "domain/events.h"
#include "domain/task_rules.h"
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

absl::Status UpcastV1ToV2(storage::v1::StoredEvent& event) {
  domain::FillVersion1Defaults(event);
  return absl::OkStatus();
}

absl::Status UpcastV2ToV3(storage::v1::StoredEvent&) {
  // Version 3 only adds (Sealed, PatientErased, PATIENT_DATA_ERASED): a version 2 event reads as
  // it always has.
  return absl::OkStatus();
}

absl::Status RegisterProductionUpcasters(SchemaRegistry& registry) {
  // One line per step, as the schema grows.
  if (absl::Status s = registry.Register(1, UpcastV1ToV2); !s.ok()) return s;
  return registry.Register(2, UpcastV2ToV3);
}

const SchemaRegistry& SchemaRegistry::Production() {
  static const SchemaRegistry* const kProduction = [] {
    auto* registry = new SchemaRegistry(kEventSchemaVersion);
    if (!RegisterProductionUpcasters(*registry).ok()) std::abort();  // a bug in this file
    return registry;
  }();
  return *kProduction;
}

SchemaRegistry::SchemaRegistry(uint32_t current_version)
    : current_version_(current_version < 1 ? 1 : current_version),
      upcasters_(current_version_ - 1) {}

absl::Status SchemaRegistry::Register(uint32_t from_version, Upcaster upcaster) {
  if (from_version < 1 || from_version >= current_version_) {
    return absl::InvalidArgumentError(
        absl::StrCat("schema registry: no step from version ", from_version,
                     " (the current version is ", current_version_, ")"));
  }
  if (upcaster == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("schema registry: empty upcaster for version ", from_version));
  }
  Upcaster& slot = upcasters_[from_version - 1];
  if (slot != nullptr) {
    return absl::AlreadyExistsError(absl::StrCat("schema registry: version ", from_version,
                                                 " already has an upcaster"));
  }
  slot = std::move(upcaster);
  return absl::OkStatus();
}

absl::Status SchemaRegistry::CheckComplete() const {
  for (std::size_t i = 0; i < upcasters_.size(); ++i) {
    if (upcasters_[i] == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("schema registry: no upcaster from version ", i + 1, " to ", i + 2));
    }
  }
  return absl::OkStatus();
}

absl::Status SchemaRegistry::Upcast(uint64_t position, storage::v1::StoredEvent& event) const {
  const uint32_t stored = event.schema_version();
  if (stored == 0) return Corrupt(position, "StoredEvent schema_version is missing");
  if (stored > current_version_) {
    return Corrupt(position, absl::StrCat("StoredEvent schema_version ", stored,
                                          " is newer than this build supports (",
                                          current_version_, ")"));
  }
  for (uint32_t version = stored; version < current_version_; ++version) {
    const Upcaster& step = upcasters_[version - 1];
    if (step == nullptr) {
      return Corrupt(position, absl::StrCat("no upcaster from schema_version ", version));
    }
    if (absl::Status s = step(event); !s.ok()) {
      return Corrupt(position, absl::StrCat("upcasting schema_version ", version, " to ",
                                            version + 1, ": ", s.message()));
    }
    event.set_schema_version(version + 1);
  }
  return absl::OkStatus();
}

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

absl::StatusOr<DecodedEvent> DecodeEvent(uint64_t position, absl::string_view value,
                                         const SchemaRegistry& schemas) {
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
  if (decoded.event.position() != position) {
    return Corrupt(position,
                   absl::StrCat("body says position ", decoded.event.position(), ", key says ",
                                position));
  }
  decoded.stored_schema_version = decoded.event.schema_version();
  if (absl::Status s = schemas.Upcast(position, decoded.event); !s.ok()) return s;
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
  record.set_on_behalf_of(e.on_behalf_of());
  if (const domain::EventKind* kind = domain::FindEventKind(e.payload_case())) {
    kind->copy_payload(e, record);  // an event without payload is served without one
  }
  // Sealed personal fields (an encrypted store): the store opens them before the record leaves.
  if (e.has_sealed()) record.set_sealed(e.sealed().SerializeAsString());
  record.set_prev_hash(std::string(AsBytes(decoded.prev_hash)));
  record.set_hash(std::string(AsBytes(decoded.hash)));
  record.set_schema_version(decoded.stored_schema_version != 0 ? decoded.stored_schema_version
                                                               : e.schema_version());
  return record;
}

}  // namespace outreach::store
