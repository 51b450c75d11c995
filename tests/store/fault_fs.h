// FaultFs: a rocksdb::FileSystem for tests that simulates a power cut and failing syncs.
//
// It is a smaller cousin of RocksDB's own utilities/fault_injection_fs.cc, written for the
// outreach store tests. Wrap it with rocksdb::NewCompositeEnv(fs) to get a rocksdb::Env for
// StoreOptions::env.
//
// The model of durability (what survives a power cut):
//  - File data. Writes go through to the real file at once, so the open database reads back
//    what it wrote (as from the page cache), but a file's bytes are durable only up to its
//    last successful Sync or Fsync. RangeSync makes nothing durable (sync_file_range(2) persists
//    neither the file size nor the metadata), and neither does Close (close(2) flushes nothing).
//  - Directory entries. A name created, renamed onto, renamed away or deleted since the last
//    Fsync of its directory (FSDirectory::Fsync) is not durable: at the cut the name returns
//    to what it was at that last directory Fsync: absent, or present with the durable bytes it
//    had then. This is what makes the cut realistic for RocksDB's WAL (a new log is durable
//    only once its directory is synced), its MANIFEST and CURRENT (written as a temporary file,
//    synced, renamed onto CURRENT, then the directory synced).
//  - Truncating an existing file by opening it anew is treated like replacing its name.
//
// Not modelled: directories themselves (created directories are durable at once), random-RW
// files (RocksDB's default options do not use them; they pass through untracked),
// ReuseWritableFile (WAL recycling; refused with NotSupported), hard links (a link is a new
// name like any other, its data shared untracked; a name restored at the cut gets a file of its
// own with its durable bytes, where a real disk would bring back the name of the shared file)
// and FileSystem::Truncate of a file not written through this file system (durable at once).
//
// Use: PowerCut() while the database is open (every later write, sync, create, rename and
// delete fails with IOError; reads keep working), destroy the database handle, then
// DropUnsyncedData() rewrites the real files to their durable state and leaves a healthy
// FaultFs that regards everything on disk as durable. FailSyncs(true) makes every Sync, Fsync
// and directory Fsync fail with IOError (nothing else) until FailSyncs(false). FillDisk(true)
// makes every append and allocation fail with NoSpace (ENOSPC; the data is not written) until
// FillDisk(false), as a full disk does; syncs, renames and deletes go on.
// PowerCutAtCall(n) cuts the power at the n-th mutating call from then on (that call already
// fails): a cut in the middle of something the test cannot pause, such as Open's recovery or a
// rebuild. MutatingCalls() counts the calls so far, so that a test can first measure how many
// calls a healthy run of the same step makes and then cut somewhere inside it.
//
// Thread-safe: RocksDB calls it from many threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/file_system.h"
#include "rocksdb/io_status.h"

namespace outreach::store::faults {

class FaultFs final : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultFs(std::shared_ptr<rocksdb::FileSystem> base = rocksdb::FileSystem::Default());

  const char* Name() const override { return "FaultFs"; }

  // From now on every mutating call fails with IOError("fault_fs: power cut").
  void PowerCut();
  // The n-th mutating call from now (n >= 1: every write, sync, create, rename, delete and
  // close that a power cut fails) and every later one fail as after PowerCut().
  void PowerCutAtCall(uint64_t n);
  // Mutating calls made through this file system so far, including failed ones.
  uint64_t MutatingCalls() const;
  // Sync, Fsync and directory Fsync fail with IOError("fault_fs: injected sync failure") while
  // `fail` is set.
  void FailSyncs(bool fail);
  // Appends and allocations fail with rocksdb's NoSpace while `full` is set.
  void FillDisk(bool full);
  // Applies the power cut to the real files (see the model above) and forgets every tracked
  // file. Call it only after every database using this file system is closed. Clears PowerCut,
  // PowerCutAtCall, FailSyncs and FillDisk.
  absl::Status DropUnsyncedData();

  // For tests of the model itself: the tracked (written, durable) byte counts of a writable file.
  struct FileState {
    uint64_t written = 0;
    uint64_t synced = 0;
  };
  bool Tracked(const std::string& name, FileState* state) const;

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& name,
                                       const rocksdb::FileOptions& options,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& name, const std::string& old_name,
                                      const rocksdb::FileOptions& options,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomRWFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& options,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& name, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& from, const std::string& to,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus LinkFile(const std::string& from, const std::string& to,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus Truncate(const std::string& name, size_t size,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDir(const std::string& name, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDirIfMissing(const std::string& name,
                                       const rocksdb::IOOptions& options,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteDir(const std::string& name, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override;

 private:
  class File;
  class Directory;

  // What a name was at its directory's last Fsync.
  struct DurableEntry {
    bool existed = false;
    std::string contents;  // when it existed
  };

  // Errors for the file and directory wrappers; each call counts as one mutating call.
  rocksdb::IOStatus WriteError(bool uses_space = false);
  rocksdb::IOStatus SyncError();
  // Counts a mutating call and cuts the power if it is the one PowerCutAtCall chose.
  void CountCall() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Called by File.
  void Appended(const std::string& name, uint64_t end);
  void Synced(const std::string& name, uint64_t end);
  void Truncated(const std::string& name, uint64_t size);
  // Called by Directory after a successful Fsync: the entries of `dir` are durable now.
  void DirectorySynced(const std::string& dir);

  // Records what `name` was at its directory's last Fsync before its entry first changes.
  void RememberEntry(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The bytes of `name` a power cut would leave (its synced prefix if tracked).
  std::string DurableContents(const std::string& name) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  bool power_cut_ ABSL_GUARDED_BY(mu_) = false;
  bool fail_syncs_ ABSL_GUARDED_BY(mu_) = false;
  bool disk_full_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t calls_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t cut_at_call_ ABSL_GUARDED_BY(mu_) = 0;  // 0: no cut planned
  // Files written through this file system since they were created (or reopened).
  std::map<std::string, FileState> files_ ABSL_GUARDED_BY(mu_);
  // Names changed since their directory's last Fsync.
  std::map<std::string, DurableEntry> changed_entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace outreach::store::faults
