#include "store/projection_rows.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "logging/log.h"
#include "rocksdb/env.h"
#include "rocksdb/sst_file_writer.h"
#include "rocksdb/write_batch.h"
#include "store/rocks.h"

namespace outreach::store {

absl::Status CompareStoredProjections(rocksdb::DB* db, const Handles& handles,
                                      const rocksdb::ReadOptions& read, const FoldedLog& folded) {
  std::unique_ptr<rocksdb::Iterator> it;
  keys::Cf family = keys::kDefault;
  auto name = [&] { return keys::ColumnFamilyNames()[family]; };
  // Every stored row of the current family is replayed; `it` is done with it.
  auto end_family = [&]() -> absl::Status {
    if (it == nullptr) return absl::OkStatus();
    if (it->Valid()) {
      return absl::DataLossError(
          absl::StrCat("projections: ", name(), " row ", absl::BytesToHexString(View(it->key())),
                       " is stored but not produced by replaying the log"));
    }
    if (!it->status().ok()) return FromRocks(it->status(), "reading the projections");
    return absl::OkStatus();
  };
  const std::vector<keys::Cf> families = FamiliesOf(folded.projections);
  std::size_t next_family = 0;  // index into `families` of the next family to start
  // Starts every family up to and including `target` (those skipped have no replayed rows).
  auto start_family = [&](keys::Cf target) -> absl::Status {
    while (it == nullptr || family != target) {
      if (absl::Status s = end_family(); !s.ok()) return s;
      if (next_family == families.size()) {
        return absl::InternalError(absl::StrCat("projections: a row of family ", target,
                                                " out of its projection's order"));
      }
      family = families[next_family++];
      it.reset(db->NewIterator(read, handles[family]));
      it->SeekToFirst();
    }
    return absl::OkStatus();
  };
  absl::Status compared = EmitRows(
      folded, [&](keys::Cf row_family, absl::string_view key, absl::string_view value) {
        if (absl::Status s = start_family(row_family); !s.ok()) return s;
        if (it->Valid() && View(it->key()) < key) {
          return absl::DataLossError(absl::StrCat(
              "projections: ", name(), " row ", absl::BytesToHexString(View(it->key())),
              " is stored but not produced by replaying the log"));
        }
        if (!it->Valid() || View(it->key()) != key) {
          if (!it->status().ok()) return FromRocks(it->status(), "reading the projections");
          return absl::DataLossError(absl::StrCat(
              "projections: ", name(), " row ", absl::BytesToHexString(key),
              " is produced by replaying the log but missing or out of place in the store"));
        }
        if (View(it->value()) != value) {
          return absl::DataLossError(absl::StrCat("projections: ", name(), " row ",
                                                  absl::BytesToHexString(key),
                                                  " differs from the replay of the log"));
        }
        it->Next();
        return absl::OkStatus();
      });
  if (!compared.ok()) return compared;
  if (families.empty()) return absl::OkStatus();
  if (absl::Status s = start_family(families.back()); !s.ok()) return s;
  return end_family();
}

absl::Status ClearProjectionFamilies(rocksdb::DB* db, const Handles& handles,
                                     const rocksdb::WriteOptions& write) {
  rocksdb::WriteBatch clear;
  for (keys::Cf family : ProjectionFamilies()) {
    std::unique_ptr<rocksdb::Iterator> it(
        db->NewIterator(rocksdb::ReadOptions(), handles[family]));
    it->SeekToLast();
    if (!it->Valid()) {
      if (!it->status().ok()) return FromRocks(it->status(), "rebuild: clearing projections");
      continue;
    }
    std::string end = it->key().ToString();
    end.push_back('\0');  // just past the last row
    it->SeekToFirst();
    if (!it->Valid()) return FromRocks(it->status(), "rebuild: clearing projections");
    const rocksdb::Status s = clear.DeleteRange(handles[family], it->key(), end);
    if (!s.ok()) return FromRocks(s, "rebuild: clearing projections");
  }
  if (clear.Count() > 0) {
    return FromRocks(db->Write(write, &clear), "rebuild: clearing projections");
  }
  return absl::OkStatus();
}

absl::Status IngestFoldedRows(rocksdb::DB* db, const Handles& handles, const std::string& dir,
                              const FoldedLog& folded) {
  // One SST file per family, written in key order as EmitRows hands the rows over.
  std::vector<rocksdb::IngestExternalFileArg> ingest;
  std::vector<std::string> files;
  std::unique_ptr<rocksdb::SstFileWriter> writer;
  keys::Cf writing = keys::kDefault;
  auto finish = [&]() -> absl::Status {
    if (writer == nullptr) return absl::OkStatus();
    const rocksdb::Status s = writer->Finish();
    writer.reset();
    if (!s.ok()) return FromRocks(s, absl::StrCat("rebuild: writing ", files.back()));
    rocksdb::IngestExternalFileArg arg;
    arg.column_family = handles[writing];
    arg.external_files = {files.back()};
    arg.options.move_files = true;
    ingest.push_back(std::move(arg));
    return absl::OkStatus();
  };
  absl::Status written = EmitRows(
      folded, [&](keys::Cf family, absl::string_view key, absl::string_view value) {
        if (writer == nullptr || family != writing) {
          if (absl::Status s = finish(); !s.ok()) return s;
          writing = family;
          files.push_back(
              absl::StrCat(dir, "/rebuild-", keys::ColumnFamilyNames()[family], ".sst"));
          rocksdb::Options options(db->GetDBOptions(), db->GetOptions(handles[family]));
          // The family's fast compression: the files land above the bottommost level, and
          // compaction gives them the bottommost compression when they get there.
          options.bottommost_compression = rocksdb::kDisableCompressionOption;
          // invalidate_page_cache off: the ingestion reads the file right back.
          writer = std::make_unique<rocksdb::SstFileWriter>(rocksdb::EnvOptions(options),
                                                            options, handles[family],
                                                            /*invalidate_page_cache=*/false);
          // A name left by a rebuild that a power cut interrupted may still be a hard link to
          // a live table file (the ingestion links it in, and the unlink of the name was not
          // durable): unlinked first, so that this file is a new one and never writes through
          // that table.
          db->GetEnv()->DeleteFile(files.back()).PermitUncheckedError();
          if (const rocksdb::Status s = writer->Open(files.back()); !s.ok()) {
            return FromRocks(s, absl::StrCat("rebuild: creating ", files.back()));
          }
        }
        const rocksdb::Status put = writer->Put(ToSlice(key), ToSlice(value));
        if (put.ok()) return absl::OkStatus();  // no message built per row
        return FromRocks(put, absl::StrCat("rebuild: writing ", files.back()));
      });
  if (written.ok()) written = finish();
  writer.reset();
  if (written.ok() && !ingest.empty()) {
    // One atomic ingestion for every family.
    written = FromRocks(db->IngestExternalFiles(ingest), "rebuild: ingesting the projections");
  }
  // Moved files are gone already; after a failure or a copy, the sources are not needed.
  for (const std::string& file : files) db->GetEnv()->DeleteFile(file).PermitUncheckedError();
  return written;
}

namespace {

absl::Status RebuildRows(Database& database, const LogReader& log, uint64_t head,
                         absl::FunctionRef<void(uint64_t, uint64_t)> progress, uint64_t every) {
  {
    rocksdb::WriteBatch batch;
    batch.Delete(database.cf(keys::kDefault), keys::kProjectionFormatKey);
    if (absl::Status s = database.WriteSynced(&batch, "rebuild"); !s.ok()) return s;
  }
  FoldedLog folded;
  if (absl::Status s = FoldLog(log, rocksdb::ReadOptions(), head, &folded,
                               [&](uint64_t events) {
                                 if (every > 0 && events % every == 0) progress(events, head);
                               });
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ClearProjectionFamilies(database.db(), database.handles(), database.SyncedWrites());
      !s.ok()) {
    return s;
  }
  if (absl::Status s = IngestFoldedRows(database.db(), database.handles(), database.dir(), folded);
      !s.ok()) {
    return s;
  }
  rocksdb::WriteBatch batch;
  batch.Put(database.cf(keys::kDefault), keys::kProjectionFormatKey,
            keys::EncodeFixed32BE(keys::kProjectionFormat));
  batch.Put(database.cf(keys::kDefault), keys::kProjectionSchemaKey,
            keys::EncodeFixed32BE(log.schemas().current_version()));
  absl::Status s = database.WriteSynced(&batch, "rebuild: recording the projection format");
  if (s.ok()) progress(head, head);
  return s;
}

}  // namespace

absl::Status RebuildProjectionsFromLog(Database& database, const LogReader& log, uint64_t head,
                                       absl::FunctionRef<void(uint64_t, uint64_t)> progress,
                                       uint64_t every) {
  logging::Info("rebuilding the projections from the log", {{"events", head}});
  const absl::Time started = absl::Now();
  absl::Status s = RebuildRows(database, log, head, progress, every);
  const double seconds = absl::ToDoubleSeconds(absl::Now() - started);
  if (s.ok()) {
    logging::Info("projections rebuilt", {{"events", head}, {"seconds", seconds}});
  } else {
    logging::Error("rebuilding the projections failed",
                   {{"events", head}, {"seconds", seconds}, {"cause", s.ToString()}});
  }
  return s;
}

absl::StatusOr<std::string> DumpProjectionRows(const Database& database,
                                               const rocksdb::ReadOptions& read) {
  std::string out;
  for (keys::Cf family : ProjectionFamilies()) {
    std::unique_ptr<rocksdb::Iterator> it(database.db()->NewIterator(read, database.cf(family)));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      absl::StrAppend(&out, keys::ColumnFamilyNames()[family], "\t",
                      absl::BytesToHexString(View(it->key())), "\t",
                      absl::BytesToHexString(View(it->value())), "\n");
    }
    if (!it->status().ok()) return FromRocks(it->status(), "dumping projections");
  }
  return out;
}

}  // namespace outreach::store
