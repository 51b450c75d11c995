#include "store/privacy.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "store/database.h"
#include "store/keys.h"
#include "store/rocks.h"

namespace outreach::store {
namespace {

using storage::v1::DataKeyRow;
using storage::v1::PersonalFields;
using storage::v1::PrivacyRow;
using storage::v1::Sealed;
using storage::v1::StoredEvent;

constexpr std::size_t kKeySize = 32;
constexpr std::size_t kNonceSize = 12;
constexpr std::size_t kTagSize = 16;
constexpr std::size_t kKeyIdSize = 8;
constexpr std::size_t kPseudonymHexDigits = 32;
constexpr std::size_t kCachedKeys = 1 << 16;
constexpr char kPseudonymPrefix[] = "p:";

std::string RandomBytes(std::size_t size) {
  std::string out(size, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(size)) != 1) {
    std::abort();  // no randomness: no key may be made
  }
  return out;
}

std::string Hmac(absl::string_view key, absl::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &size);
  return std::string(reinterpret_cast<const char*>(out), size);
}

std::string Kek(absl::string_view master) { return Hmac(master, "outreach kek v1"); }
std::string MasterKeyId(absl::string_view master) {
  return Hmac(master, "outreach master key id").substr(0, kKeyIdSize);
}

struct CipherContext {
  CipherContext() : ctx(EVP_CIPHER_CTX_new()) {}
  ~CipherContext() { EVP_CIPHER_CTX_free(ctx); }
  EVP_CIPHER_CTX* ctx;
};

const unsigned char* Bytes(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// AES-256-GCM: ciphertext || tag.
std::string GcmSeal(absl::string_view key, absl::string_view nonce, absl::string_view aad,
                    absl::string_view plaintext) {
  CipherContext c;
  std::string out(plaintext.size() + kTagSize, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  int len = 0;
  int total = 0;
  if (c.ctx == nullptr ||
      EVP_EncryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()),
                          nullptr) != 1 ||
      EVP_EncryptInit_ex(c.ctx, nullptr, nullptr, Bytes(key), Bytes(nonce)) != 1 ||
      EVP_EncryptUpdate(c.ctx, nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(c.ctx, o, &len, Bytes(plaintext), static_cast<int>(plaintext.size())) !=
          1) {
    std::abort();  // OpenSSL cannot encrypt: nothing sealed may be written
  }
  total = len;
  if (EVP_EncryptFinal_ex(c.ctx, o + total, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_GET_TAG, kTagSize, o + plaintext.size()) != 1) {
    std::abort();
  }
  return out;
}

// nullopt when the tag does not verify (another key, or changed bytes).
std::optional<std::string> GcmOpen(absl::string_view key, absl::string_view nonce,
                                   absl::string_view aad, absl::string_view sealed) {
  if (key.size() != kKeySize || nonce.size() != kNonceSize || sealed.size() < kTagSize) {
    return std::nullopt;
  }
  const std::size_t size = sealed.size() - kTagSize;
  CipherContext c;
  std::string out(size, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  std::string tag(sealed.substr(size));
  int len = 0;
  if (c.ctx == nullptr ||
      EVP_DecryptInit_ex(c.ctx, EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()),
                          nullptr) != 1 ||
      EVP_DecryptInit_ex(c.ctx, nullptr, nullptr, Bytes(key), Bytes(nonce)) != 1 ||
      EVP_DecryptUpdate(c.ctx, nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(c.ctx, o, &len, Bytes(sealed), static_cast<int>(size)) != 1 ||
      EVP_CIPHER_CTX_ctrl(c.ctx, EVP_CTRL_GCM_SET_TAG, kTagSize, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(c.ctx, o + len, &len) != 1) {
    return std::nullopt;
  }
  return out;
}

std::string SealedAad(absl::string_view practice_id, absl::string_view pseudonym,
                      absl::string_view key_id) {
  return absl::StrCat("outreach sealed v1", absl::string_view("\0", 1), practice_id,
                      absl::string_view("\0", 1), pseudonym, absl::string_view("\0", 1), key_id);
}

// A new data key's row (wrapped under `kek`) and the key.
std::pair<std::string, DataKey> MakeKeyRow(absl::string_view kek, absl::string_view row_key,
                                           absl::string_view patient_id) {
  DataKey key{RandomBytes(kKeyIdSize), RandomBytes(kKeySize), std::string(patient_id)};
  DataKeyRow row;
  row.set_version(1);
  row.set_key_id(key.key_id);
  row.set_nonce(RandomBytes(kNonceSize));
  row.set_wrapped_key(GcmSeal(kek, row.nonce(), row_key, key.key));
  row.set_id_nonce(RandomBytes(kNonceSize));
  row.set_sealed_patient_id(GcmSeal(key.key, row.id_nonce(), row_key, patient_id));
  return {keys::EncodeMessage(row), std::move(key)};
}

absl::StatusOr<PrivacyRow> ReadPrivacyRow(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta) {
  std::string raw;
  rocksdb::Status s = db->Get(rocksdb::ReadOptions(), meta, keys::kPrivacyKey, &raw);
  if (s.IsNotFound()) return absl::NotFoundError("the database is not encrypted");
  if (!s.ok()) return FromRocks(s, "reading the privacy row");
  PrivacyRow row;
  if (!row.ParseFromString(raw) || row.version() != 1) {
    return absl::DataLossError("the privacy row is malformed");
  }
  return row;
}

// The index key of `row`, under `master`; FAILED_PRECONDITION if `master` is not its key.
absl::StatusOr<std::string> IndexKeyOf(const PrivacyRow& row, absl::string_view master) {
  if (MasterKeyId(master) != row.master_key_id()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the master key is not this database's (the database was encrypted under key id ",
        absl::BytesToHexString(row.master_key_id()), ", the file holds key id ",
        absl::BytesToHexString(MasterKeyId(master)), ")"));
  }
  std::optional<std::string> index =
      GcmOpen(Kek(master), row.nonce(), keys::kPrivacyKey, row.wrapped_index_key());
  if (!index.has_value()) {
    return absl::DataLossError("the privacy row's index key does not open under the master key");
  }
  return *index;
}

bool IsPseudonym(absl::string_view id) {
  if (id.size() != sizeof(kPseudonymPrefix) - 1 + kPseudonymHexDigits ||
      !absl::StartsWith(id, kPseudonymPrefix)) {
    return false;
  }
  for (char c : id.substr(sizeof(kPseudonymPrefix) - 1)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> ReadMasterKeyFile(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("master key file ", path, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat("master key file ", path, ": not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "master key file %s: mode %04o lets others read it; chmod 600 it", path,
        st.st_mode & 07777));
  }
  std::ifstream in(path, std::ios::binary);
  std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    return absl::InvalidArgumentError(absl::StrCat("master key file ", path, ": cannot read it"));
  }
  if (key.size() != kMasterKeySize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "master key file ", path, ": holds ", key.size(), " bytes, want exactly ",
        kMasterKeySize, " random bytes (head -c 32 /dev/urandom > FILE)"));
  }
  return key;
}

absl::StatusOr<bool> IsEncrypted(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta,
                                 const rocksdb::ReadOptions& read) {
  std::string raw;
  rocksdb::Status s = db->Get(read, meta, keys::kPrivacyKey, &raw);
  if (s.IsNotFound()) return false;
  if (!s.ok()) return FromRocks(s, "reading the privacy row");
  return true;
}

absl::Status RotateMasterKey(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta,
                             rocksdb::ColumnFamilyHandle* keys_cf, absl::string_view old_master,
                             absl::string_view new_master) {
  absl::StatusOr<PrivacyRow> row = ReadPrivacyRow(db, meta);
  if (absl::IsNotFound(row.status())) {
    return absl::FailedPreconditionError("the database is not encrypted: no master key to rotate");
  }
  if (!row.ok()) return row.status();
  absl::StatusOr<std::string> index = IndexKeyOf(*row, old_master);
  if (!index.ok()) return index.status();
  const std::string old_kek = Kek(old_master);
  const std::string new_kek = Kek(new_master);
  rocksdb::WriteBatch batch;
  PrivacyRow rotated;
  rotated.set_version(1);
  rotated.set_master_key_id(MasterKeyId(new_master));
  rotated.set_nonce(RandomBytes(kNonceSize));
  rotated.set_wrapped_index_key(GcmSeal(new_kek, rotated.nonce(), keys::kPrivacyKey, *index));
  batch.Put(meta, keys::kPrivacyKey, keys::EncodeMessage(rotated));
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), keys_cf));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const absl::string_view row_key = View(it->key());
    DataKeyRow key_row;
    if (!key_row.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return absl::DataLossError("keys: a data key row is malformed");
    }
    std::optional<std::string> key =
        GcmOpen(old_kek, key_row.nonce(), row_key, key_row.wrapped_key());
    if (!key.has_value()) return absl::DataLossError("keys: a data key does not open");
    key_row.set_nonce(RandomBytes(kNonceSize));
    key_row.set_wrapped_key(GcmSeal(new_kek, key_row.nonce(), row_key, *key));
    batch.Put(keys_cf, ToSlice(row_key), keys::EncodeMessage(key_row));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading the data keys");
  rocksdb::WriteOptions synced;
  synced.sync = true;
  if (absl::Status s = FromRocks(db->Write(synced, &batch), "writing the rewrapped keys");
      !s.ok()) {
    return s;
  }
  // The old wrapping leaves the files: memtables (and so the WAL) flushed, the two families
  // compacted.
  rocksdb::FlushOptions flush;
  flush.wait = true;
  if (absl::Status s = FromRocks(db->Flush(flush, {meta, keys_cf}), "flushing"); !s.ok()) return s;
  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (rocksdb::ColumnFamilyHandle* family : {meta, keys_cf}) {
    if (absl::Status s = FromRocks(db->CompactRange(compact, family, nullptr, nullptr),
                                   "compacting the rewrapped keys");
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status RotateMasterKeyOf(const std::string& dir, absl::string_view old_master,
                               absl::string_view new_master) {
  DatabaseOptions options;
  options.create_if_missing = false;
  absl::StatusOr<std::unique_ptr<Database>> database = Database::Open(dir, options);
  if (!database.ok()) return database.status();
  absl::Status rotated = RotateMasterKey((*database)->db(), (*database)->cf(keys::kDefault),
                                         (*database)->cf(keys::kKeys), old_master, new_master);
  (*database)->Close(/*flush=*/true);
  return rotated;
}

Privacy::Privacy(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* keys, std::string kek,
                 std::string index_key)
    : db_(db), keys_(keys), kek_(std::move(kek)), index_key_(std::move(index_key)) {}

absl::StatusOr<std::unique_ptr<Privacy>> Privacy::Open(rocksdb::DB* db,
                                                       rocksdb::ColumnFamilyHandle* meta,
                                                       rocksdb::ColumnFamilyHandle* keys,
                                                       absl::string_view master_key, bool create,
                                                       rocksdb::WriteBatch* batch) {
  if (master_key.size() != kMasterKeySize) {
    return absl::InvalidArgumentError("the master key must be 32 bytes");
  }
  if (keys == nullptr) {
    return absl::FailedPreconditionError("the database has no \"keys\" column family");
  }
  absl::StatusOr<PrivacyRow> row = ReadPrivacyRow(db, meta);
  if (absl::IsNotFound(row.status())) {
    if (!create) return row.status();
    std::string index_key = RandomBytes(kKeySize);
    PrivacyRow made;
    made.set_version(1);
    made.set_master_key_id(MasterKeyId(master_key));
    made.set_nonce(RandomBytes(kNonceSize));
    made.set_wrapped_index_key(GcmSeal(Kek(master_key), made.nonce(), keys::kPrivacyKey,
                                       index_key));
    batch->Put(meta, keys::kPrivacyKey, keys::EncodeMessage(made));
    return std::unique_ptr<Privacy>(
        new Privacy(db, keys, Kek(master_key), std::move(index_key)));
  }
  if (!row.ok()) return row.status();
  absl::StatusOr<std::string> index = IndexKeyOf(*row, master_key);
  if (!index.ok()) return index.status();
  return std::unique_ptr<Privacy>(new Privacy(db, keys, Kek(master_key), *std::move(index)));
}

std::string Privacy::Pseudonym(absl::string_view patient_id) const {
  return absl::StrCat(
      kPseudonymPrefix,
      absl::BytesToHexString(Hmac(index_key_, patient_id)).substr(0, kPseudonymHexDigits));
}

std::string Privacy::KeyRowKey(absl::string_view practice_id, absl::string_view pseudonym) {
  return absl::StrCat(practice_id, absl::string_view("\0", 1), pseudonym);
}

absl::StatusOr<DataKey> Privacy::Unwrap(const std::string& row_key, absl::string_view raw) const {
  DataKeyRow row;
  if (!row.ParseFromArray(raw.data(), static_cast<int>(raw.size())) || row.version() != 1) {
    return absl::DataLossError("keys: a data key row is malformed");
  }
  std::optional<std::string> key = GcmOpen(kek_, row.nonce(), row_key, row.wrapped_key());
  if (!key.has_value()) {
    return absl::DataLossError("keys: a data key does not open under the master key");
  }
  std::optional<std::string> patient_id =
      GcmOpen(*key, row.id_nonce(), row_key, row.sealed_patient_id());
  if (!patient_id.has_value()) {
    return absl::DataLossError("keys: a patient id does not open under its data key");
  }
  return DataKey{row.key_id(), *std::move(key), *std::move(patient_id)};
}

absl::StatusOr<std::optional<DataKey>> Privacy::CommittedKey(const std::string& row_key) const {
  uint64_t epoch = 0;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = cache_.find(row_key); it != cache_.end()) return *it->second;
    epoch = epoch_;
  }
  std::string raw;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), keys_, ToSlice(row_key), &raw);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return FromRocks(s, "reading a data key");
  absl::StatusOr<DataKey> key = Unwrap(row_key, raw);
  if (!key.ok()) return key.status();
  absl::MutexLock lock(&mu_);
  if (epoch == epoch_) {  // no key was destroyed since the read: this one may be kept
    if (cache_.size() >= kCachedKeys) cache_.clear();
    cache_[row_key] = std::make_shared<const DataKey>(*key);
  }
  return *std::move(key);
}

absl::Status Privacy::Seal(StoredEvent& event, absl::string_view practice_id,
                           absl::string_view pseudonym, absl::string_view patient_id,
                           const BatchKeys& batch, KeyChanges& changes) const {
  PersonalFields fields;
  bool keeps_id = false;  // the patient's first events: a key is made for them
  switch (event.payload_case()) {
    case StoredEvent::kTaskCreated:
      fields.set_title(std::move(*event.mutable_task_created()->mutable_title()));
      event.mutable_task_created()->clear_title();
      keeps_id = true;
      break;
    case StoredEvent::kContactLogged:
      fields.set_notes(std::move(*event.mutable_contact_logged()->mutable_notes()));
      event.mutable_contact_logged()->clear_notes();
      break;
    case StoredEvent::kTaskClosed:
      fields.set_notes(std::move(*event.mutable_task_closed()->mutable_notes()));
      fields.set_source_ref(std::move(*event.mutable_task_closed()->mutable_source_ref()));
      event.mutable_task_closed()->clear_notes();
      event.mutable_task_closed()->clear_source_ref();
      break;
    case StoredEvent::kContactPreferenceSet:
      fields.set_reason(std::move(*event.mutable_contact_preference_set()->mutable_reason()));
      event.mutable_contact_preference_set()->clear_reason();
      keeps_id = true;
      break;
    case StoredEvent::kTaskAssigned:
    case StoredEvent::kPatientErased:
    case StoredEvent::PAYLOAD_NOT_SET:
      break;
  }
  const bool has_fields = !fields.title().empty() || !fields.notes().empty() ||
                          !fields.source_ref().empty() || !fields.reason().empty();
  if (!has_fields && !keeps_id) return absl::OkStatus();
  const std::string row_key = KeyRowKey(practice_id, pseudonym);
  std::optional<DataKey> key;
  if (auto mine = changes.keys.find(row_key); mine != changes.keys.end()) {
    key = mine->second;
  } else if (auto pending = batch.find(row_key); pending != batch.end()) {
    key = pending->second;
  } else {
    absl::StatusOr<std::optional<DataKey>> committed = CommittedKey(row_key);
    if (!committed.ok()) return committed.status();
    key = *std::move(committed);
    if (key.has_value()) changes.keys[row_key] = key;
  }
  if (!key.has_value()) {
    // The patient's first event (or first since an erasure): its key, and its id, go in here.
    if (patient_id.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the patient's data in practice \"", practice_id,
          "\" was erased: nothing more can be recorded for it on this task"));
    }
    auto [row, made] = MakeKeyRow(kek_, row_key, patient_id);
    changes.rows.emplace_back(row_key, std::move(row));
    key = made;
    changes.keys[row_key] = std::move(made);
  }
  // A patient's first events are sealed even without fields: the Sealed names the key the
  // task (or preference) belongs to, so that once that key is destroyed the patient's id reads
  // as erased there too, though the patient be seen again under a new key.
  if (!has_fields && !keeps_id) return absl::OkStatus();
  Sealed* sealed = event.mutable_sealed();
  sealed->set_version(1);
  sealed->set_practice_id(std::string(practice_id));
  sealed->set_patient(std::string(pseudonym));
  sealed->set_key_id(key->key_id);
  sealed->set_nonce(RandomBytes(kNonceSize));
  sealed->set_ciphertext(GcmSeal(key->key, sealed->nonce(),
                                 SealedAad(practice_id, pseudonym, key->key_id),
                                 fields.SerializeAsString()));
  return absl::OkStatus();
}

void Privacy::DestroyKey(absl::string_view practice_id, absl::string_view pseudonym,
                         KeyChanges& changes) const {
  const std::string row_key = KeyRowKey(practice_id, pseudonym);
  changes.rows.emplace_back(row_key, std::nullopt);
  changes.keys[row_key] = std::nullopt;
}

void Privacy::Committed(const BatchKeys& batch_keys) {
  absl::MutexLock lock(&mu_);
  for (const auto& [row_key, key] : batch_keys) {
    if (key.has_value()) continue;
    cache_.erase(row_key);
    ++epoch_;
  }
}

absl::StatusOr<std::optional<PersonalFields>> Privacy::Open(absl::string_view bytes) const {
  Sealed sealed;
  if (!sealed.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) ||
      sealed.version() != 1) {
    return absl::DataLossError("a sealed field is malformed");
  }
  absl::StatusOr<std::optional<DataKey>> key =
      CommittedKey(KeyRowKey(sealed.practice_id(), sealed.patient()));
  if (!key.ok()) return key.status();
  // No key, or another one than it was sealed under: the key it was sealed under is destroyed.
  if (!key->has_value() || (*key)->key_id != sealed.key_id()) return std::nullopt;
  std::optional<std::string> plain =
      GcmOpen((*key)->key, sealed.nonce(),
              SealedAad(sealed.practice_id(), sealed.patient(), sealed.key_id()),
              sealed.ciphertext());
  PersonalFields fields;
  if (!plain.has_value() || !fields.ParseFromString(*plain)) {
    return absl::DataLossError(absl::StrCat("a sealed field of practice \"",
                                            sealed.practice_id(),
                                            "\" does not open under its patient's key"));
  }
  return fields;
}

absl::StatusOr<std::string> Privacy::PatientIdOf(absl::string_view practice_id,
                                                 absl::string_view pseudonym) const {
  if (!IsPseudonym(pseudonym)) return std::string(pseudonym);
  absl::StatusOr<std::optional<DataKey>> key = CommittedKey(KeyRowKey(practice_id, pseudonym));
  if (!key.ok()) return key.status();
  if (!key->has_value()) return std::string(kErasedMarker);
  return (*key)->patient_id;
}

absl::StatusOr<std::string> Privacy::ReasonOf(const storage::v1::PatientRow& row) const {
  if (row.reason_sealed().empty()) return row.reason();
  absl::StatusOr<std::optional<PersonalFields>> fields = Open(row.reason_sealed());
  if (!fields.ok()) return fields.status();
  return fields->has_value() ? (*fields)->reason() : std::string(kErasedMarker);
}

absl::Status Privacy::Reveal(v1::Task& task) const {
  bool erased = false;
  // Each sealed field: opened, or the marker.
  auto open = [&](std::string* sealed, auto fill) -> absl::Status {
    if (sealed->empty()) return absl::OkStatus();
    absl::StatusOr<std::optional<PersonalFields>> fields = Open(*sealed);
    if (!fields.ok()) return fields.status();
    sealed->clear();
    if (!fields->has_value()) erased = true;
    fill(fields->has_value() ? &**fields : nullptr);
    return absl::OkStatus();
  };
  if (absl::Status s = open(task.mutable_sealed(),
                            [&](const PersonalFields* f) {
                              task.set_title(f != nullptr ? f->title() : kErasedMarker);
                            });
      !s.ok()) {
    return s;
  }
  // The patient's id: from its key, unless the key the task was made under is gone (the patient
  // may have been seen again since, under a new key: this task stays unlinked from it).
  if (erased) {
    task.set_patient_id(kErasedMarker);
  } else {
    absl::StatusOr<std::string> patient_id = PatientIdOf(task.practice_id(), task.patient_id());
    if (!patient_id.ok()) return patient_id.status();
    if (*patient_id == kErasedMarker) erased = true;
    task.set_patient_id(*std::move(patient_id));
  }
  for (v1::Contact& contact : *task.mutable_contacts()) {
    if (absl::Status s = open(contact.mutable_sealed(),
                              [&](const PersonalFields* f) {
                                contact.set_notes(f != nullptr ? f->notes() : kErasedMarker);
                              });
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = open(task.mutable_close_sealed(),
                            [&](const PersonalFields* f) {
                              task.set_close_notes(f != nullptr ? f->notes() : kErasedMarker);
                              task.set_close_source_ref(f != nullptr ? f->source_ref()
                                                                     : kErasedMarker);
                            });
      !s.ok()) {
    return s;
  }
  if (erased) {
    task.set_personal_data_erased(true);
    if (task.title().empty()) task.set_title(kErasedMarker);
  }
  return absl::OkStatus();
}

absl::Status Privacy::Reveal(v1::EventRecord& record) const {
  bool erased = false;
  if (!record.sealed().empty()) {
    absl::StatusOr<std::optional<PersonalFields>> fields = Open(record.sealed());
    if (!fields.ok()) return fields.status();
    record.clear_sealed();
    const bool open = fields->has_value();
    if (!open) erased = true;
    auto text = [&](const std::string& value) -> const std::string& {
      static const std::string* const kMarker = new std::string(kErasedMarker);
      return open ? value : *kMarker;
    };
    const PersonalFields& f = open ? **fields : PersonalFields::default_instance();
    if (record.has_task_created()) {
      record.mutable_task_created()->set_title(text(f.title()));
    } else if (record.has_contact_logged()) {
      record.mutable_contact_logged()->set_notes(text(f.notes()));
    } else if (record.has_task_closed()) {
      record.mutable_task_closed()->set_notes(text(f.notes()));
      record.mutable_task_closed()->set_source_ref(text(f.source_ref()));
    } else if (record.has_contact_preference_set()) {
      record.mutable_contact_preference_set()->set_reason(text(f.reason()));
    }
  }
  // The patient's id, as for a task: not through a key newer than the one the event was
  // sealed under.
  auto map_patient = [&](absl::string_view practice_id, std::string* patient_id) -> absl::Status {
    if (erased) {
      *patient_id = kErasedMarker;
      return absl::OkStatus();
    }
    absl::StatusOr<std::string> id = PatientIdOf(practice_id, *patient_id);
    if (!id.ok()) return id.status();
    if (*id == kErasedMarker) erased = true;
    *patient_id = *std::move(id);
    return absl::OkStatus();
  };
  absl::Status mapped;
  if (record.has_task_created()) {
    v1::TaskCreated& p = *record.mutable_task_created();
    mapped = map_patient(p.practice_id(), p.mutable_patient_id());
  } else if (record.has_contact_preference_set()) {
    v1::ContactPreferenceSet& p = *record.mutable_contact_preference_set();
    mapped = map_patient(p.practice_id(), p.mutable_patient_id());
  }
  if (!mapped.ok()) return mapped;
  if (erased) record.set_personal_data_erased(true);
  return absl::OkStatus();
}

absl::Status Privacy::Reveal(v1::PatientOutreach& outreach,
                             const storage::v1::PatientRow& row) const {
  if (row.erased()) {
    outreach.set_personal_data_erased(true);
    if (!row.reason_sealed().empty()) outreach.set_reason(kErasedMarker);
  } else if (!row.reason_sealed().empty()) {
    absl::StatusOr<std::optional<PersonalFields>> fields = Open(row.reason_sealed());
    if (!fields.ok()) return fields.status();
    if (fields->has_value()) {
      outreach.set_reason((*fields)->reason());
    } else {
      outreach.set_reason(kErasedMarker);
      outreach.set_personal_data_erased(true);
    }
  }
  for (v1::Task& task : *outreach.mutable_open_tasks()) {
    if (absl::Status s = Reveal(task); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace outreach::store
