// The projection rows of a fold (store/log_fold.h) against the database: compared with the
// stored rows (VerifyProjections), and written in place of them (the rebuild). Free functions
// over an open database; the caller holds off the writer while it rewrites.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "rocksdb/db.h"
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

}  // namespace outreach::store
