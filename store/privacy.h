// Crypto-shredding (issue 17, README "Privacy"): an encrypted store keeps each patient's personal
// data under a data key of the patient's own, and erasing the patient destroys the key.
//
// Keys. A master key (32 bytes, `--master-key-file`, never stored in the database) derives the
// key-encryption key (KEK = HMAC-SHA256(master, "outreach kek v1")). Under the KEK the store
// keeps, wrapped with AES-256-GCM:
//   - the index key ("default" row "privacy", storage.v1.PrivacyRow), random, made when the
//     store became encrypted: it makes the patients' pseudonyms;
//   - one data key per (practice, patient) ("keys" column family, storage.v1.DataKeyRow),
//     random, made in the batch of the patient's first event, together with the patient's own
//     id sealed under that data key.
// Rotating the master key re-wraps these rows (RotateMasterKey); the log is not touched.
//
// Pseudonyms. In an encrypted store the domain and every projection see a patient only as its
// pseudonym, "p:" + 32 hex digits of HMAC-SHA256(index key, patient_id) (a valid id, 34
// characters): the patient streams, the patients and worklist rows, TaskCreated.patient_id. The
// store maps the ids a caller gives (commands, queries) to pseudonyms, and the pseudonyms it
// returns back to ids through the patient's key row.
//
// Sealing. The writer moves an event's personal fields (Sealed.PersonalFields: the title, the
// notes, the close notes and source_ref, the preference reason) out of the payload into
// StoredEvent.sealed, AES-256-GCM under the patient's data key; the hash chain covers the
// ciphertext, so verifying and rebuilding never need a key. The fold copies the sealed bytes
// into the task and patient rows as they are; readers open them (Reveal) on the way out.
//
// Erasure. ErasePatient's batch deletes the key row; from then on every field sealed under it,
// and the patient's id, reads as kErasedMarker with personal_data_erased set. PurgeKeys then
// flushes and compacts, so that the key's bytes leave the RocksDB files.
//
// Thread-safe: the keys in memory are behind a mutex; the writer's own methods take the batch.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "domain/task_rules.h"
#include "outreach/v1/events.pb.h"
#include "outreach/v1/patient_service.pb.h"
#include "outreach/v1/storage.pb.h"
#include "outreach/v1/task.pb.h"
#include "rocksdb/db.h"
#include "store/sorted_rows.h"

namespace outreach::store {

// What an erased field reads as.
using domain::kErasedMarker;
inline constexpr std::size_t kMasterKeySize = 32;

// The master key in `path`: exactly 32 bytes, in a regular file that its owner alone may read
// (no group or other permission bits). INVALID_ARGUMENT saying what is wrong otherwise.
absl::StatusOr<std::string> ReadMasterKeyFile(const std::string& path);

// Whether the database holds a "privacy" row (it is encrypted). `meta` is the "default" family.
absl::StatusOr<bool> IsEncrypted(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta,
                                 const rocksdb::ReadOptions& read = rocksdb::ReadOptions());

// Rewraps the privacy row and every data key of the database from `old_master` to
// `new_master`, in one synced batch, then compacts so that the old wrapping leaves the files.
// FAILED_PRECONDITION when the database is not encrypted or `old_master` is not its key.
absl::Status RotateMasterKey(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* meta,
                             rocksdb::ColumnFamilyHandle* keys, absl::string_view old_master,
                             absl::string_view new_master);

// RotateMasterKey on the database in `dir`, opened for writing (no other process may have it).
absl::Status RotateMasterKeyOf(const std::string& dir, absl::string_view old_master,
                               absl::string_view new_master);

// One patient's data key, unwrapped.
struct DataKey {
  std::string key_id;      // DataKeyRow.key_id
  std::string key;         // 32 bytes
  std::string patient_id;  // the patient's own id, opened from the row
};

class Privacy {
 public:
  // The store's keys under `master_key`: reads the "privacy" row, or, when there is none and
  // `create` (a new database), makes one in `*batch` (the caller writes it). FAILED_PRECONDITION
  // when the row does not open under this master key (another database's key).
  static absl::StatusOr<std::unique_ptr<Privacy>> Open(rocksdb::DB* db,
                                                       rocksdb::ColumnFamilyHandle* meta,
                                                       rocksdb::ColumnFamilyHandle* keys,
                                                       absl::string_view master_key, bool create,
                                                       rocksdb::WriteBatch* batch);

  Privacy(const Privacy&) = delete;
  Privacy& operator=(const Privacy&) = delete;

  // The pseudonym of `patient_id` ("p:" + 32 hex digits).
  std::string Pseudonym(absl::string_view patient_id) const;
  // The "keys" row key of a patient (practice_id '\0' pseudonym).
  static std::string KeyRowKey(absl::string_view practice_id, absl::string_view pseudonym);

  // ---- The writer's side (one batch at a time) --------------------------------------------
  // The keys a batch (or one command of it) read, made or deleted so far (row key -> the key;
  // nullopt: deleted).
  using BatchKeys = absl::flat_hash_map<std::string, std::optional<DataKey>>;
  // One command's changes to the keys: `keys` as above, and the rows to put (a value) or
  // delete (nullopt) in the "keys" family, in order.
  struct KeyChanges {
    BatchKeys keys;
    std::vector<std::pair<std::string, std::optional<std::string>>> rows;
  };

  // Moves the personal fields of `event` into event.sealed under the data key of (practice_id,
  // pseudonym), as `changes`, then `batch`, then the database have it, making the key (into
  // `changes`) when there is none and the event needs one: it has personal fields, or it is
  // the patient's TaskCreated or ContactPreferenceSet (a key also keeps the id). `patient_id`
  // is the patient's own id, kept in a new key's row; FAILED_PRECONDITION when a key is needed
  // and the id is unknown (the patient was erased). An event without personal fields is left
  // as it is.
  absl::Status Seal(storage::v1::StoredEvent& event, absl::string_view practice_id,
                    absl::string_view pseudonym, absl::string_view patient_id,
                    const BatchKeys& batch, KeyChanges& changes) const;
  // Deletes the patient's data key (into `changes`).
  void DestroyKey(absl::string_view practice_id, absl::string_view pseudonym,
                  KeyChanges& changes) const;
  // After a batch is durable: keys it deleted are forgotten from memory.
  void Committed(const BatchKeys& batch_keys);

  // ---- The readers' side: opens sealed fields in place -------------------------------------
  // A task: patient_id, title, every contact's notes, close_notes and close_source_ref; an
  // erased patient's read as kErasedMarker, with personal_data_erased set. Clears the sealed
  // bytes. DATA_LOSS when a sealed field does not open under a key that exists.
  absl::Status Reveal(v1::Task& task) const;
  // A record of the log: its payload's personal fields and patient id, the same way.
  absl::Status Reveal(v1::EventRecord& record) const;
  // A patient's summary, from its row's sealed reason; its open tasks too.
  absl::Status Reveal(v1::PatientOutreach& outreach, const storage::v1::PatientRow& row) const;
  // The row's preference reason, opened (kErasedMarker once erased): what Decide compares a
  // new preference with.
  absl::StatusOr<std::string> ReasonOf(const storage::v1::PatientRow& row) const;
  // The patient's own id behind `pseudonym` in `practice_id` (kErasedMarker once erased;
  // `pseudonym` itself if it is none, as in a plain store's rows).
  absl::StatusOr<std::string> PatientIdOf(absl::string_view practice_id,
                                          absl::string_view pseudonym) const;

 private:
  Privacy(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* keys, std::string kek,
          std::string index_key);

  // The key of (practice, pseudonym) as committed: nullopt when there is none (never made, or
  // destroyed).
  absl::StatusOr<std::optional<DataKey>> CommittedKey(const std::string& row_key) const;
  absl::StatusOr<DataKey> Unwrap(const std::string& row_key, absl::string_view row) const;
  // Opens one Sealed: nullopt when its key is gone (erased).
  absl::StatusOr<std::optional<storage::v1::PersonalFields>> Open(absl::string_view sealed) const;

  rocksdb::DB* const db_;
  rocksdb::ColumnFamilyHandle* const keys_;
  const std::string kek_;
  const std::string index_key_;

  mutable absl::Mutex mu_;
  // Committed keys read so far. `epoch_` moves at every Committed that deleted one, so that a
  // reader who read a key before its deletion does not put it back.
  mutable absl::flat_hash_map<std::string, std::shared_ptr<const DataKey>> cache_
      ABSL_GUARDED_BY(mu_);
  mutable uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace outreach::store
