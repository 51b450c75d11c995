// The projection rows of a fold (store/log_fold.h) against the database: compared with the
// stored rows (VerifyProjections), and written in place of them (the rebuild). Free functions
// over an open database; the caller holds off the writer while it rewrites.
#pragma once

#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rocksdb/db.h"
#include "store/database.h"
#include "store/log_fold.h"

namespace outreach::store {

using Handles = std::vector<rocksdb::ColumnFamilyHandle*>;  // indexed by keys::Cf

// Walks the stored rows of each family of `folded.projections` (under `read`) beside the folded
// ones, both in key order. DATA_LOSS naming the first row (family, hex key) stored but not
// folded, folded but not stored, or different.
absl::Status CompareStoredProjections(rocksdb::DB* db, const Handles& handles,
                                      const rocksdb::ReadOptions& read, const FoldedLog& folded);

// Empties every family of the registered projections (ProjectionFamilies()) with one range
// deletion each, in one write.
absl::Status ClearProjectionFamilies(rocksdb::DB* db, const Handles& handles,
                                     const rocksdb::WriteOptions& write);

// Writes the folded rows, already in key order, straight into one SST file per family (in
// `dir`, named rebuild-FAMILY.sst) and ingests them all in one atomic ingestion: no memtable, no
// WAL, no per-row tombstone. The files are gone afterwards, whatever happened.
absl::Status IngestFoldedRows(rocksdb::DB* db, const Handles& handles, const std::string& dir,
                              const FoldedLog& folded);

// Rebuilds every projection from the log through `head` (the writer is stopped or paused). The
// log is folded in memory, every projection family is emptied with one range deletion, and the
// folded rows, already in key order, are written straight into SST files and ingested
// (IngestFoldedRows). The format row is deleted first and written last, synced: a rebuild
// interrupted anywhere is redone at the next Open. `progress(events_folded, head)` is called
// every `every` events (never when 0) and once at the end.
absl::Status RebuildProjectionsFromLog(Database& database, const LogReader& log, uint64_t head,
                                       absl::FunctionRef<void(uint64_t, uint64_t)> progress,
                                       uint64_t every);

// Every row of every projection family under `read`, one per line: family, hex key, hex value
// (EventStore::DumpProjections; the tests compare a live store's with a rebuilt one's).
absl::StatusOr<std::string> DumpProjectionRows(const Database& database,
                                               const rocksdb::ReadOptions& read);

}  // namespace outreach::store
