#include "tests/store/fault_fs.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"

namespace outreach::store::faults {
namespace {

// The directory part of a file name ("" for a bare name), without a trailing '/'.
std::string DirName(const std::string& name) {
  const std::size_t slash = name.find_last_of('/');
  return slash == std::string::npos ? std::string() : name.substr(0, slash);
}

std::string TrimTrailingSlashes(std::string name) {
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  return name;
}

}  // namespace

// A writable file whose appends and syncs are reported to the FaultFs under the name it was
// opened with (RocksDB never renames a file it still has open).
class FaultFs::File final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  File(std::string name, uint64_t size, FaultFs* fs, std::unique_ptr<rocksdb::FSWritableFile> file)
      : FSWritableFileOwnerWrapper(std::move(file)), name_(std::move(name)), size_(size), fs_(fs) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = fs_->WriteError(/*uses_space=*/true); !s.ok()) return s;
    rocksdb::IOStatus s = target()->Append(data, options, dbg);
    if (s.ok()) fs_->Appended(name_, size_ += data.size());
    return s;
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = fs_->WriteError(/*uses_space=*/true); !s.ok()) return s;
    rocksdb::IOStatus s = target()->Append(data, options, info, dbg);
    if (s.ok()) fs_->Appended(name_, size_ += data.size());
    return s;
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = fs_->WriteError(/*uses_space=*/true); !s.ok()) return s;
    rocksdb::IOStatus s = target()->PositionedAppend(data, offset, options, dbg);
    if (s.ok()) PositionedAppended(offset + data.size());
    return s;
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     const rocksdb::DataVerificationInfo& info,
                                     rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = fs_->WriteError(/*uses_space=*/true); !s.ok()) return s;
    rocksdb::IOStatus s = target()->PositionedAppend(data, offset, options, info, dbg);
    if (s.ok()) PositionedAppended(offset + data.size());
    return s;
  }
  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = fs_->WriteError(); !s.ok()) return s;
    rocksdb::IOStatus s = target()->Truncate(size, options, dbg);
    if (s.ok()) {
      size_ = size;
      fs_->Truncated(name_, size);
    }
    return s;
  }
  rocksdb::IOStatus Flush(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = fs_->WriteError(); !s.ok()) return s;
    return target()->Flush(options, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                         rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = fs_->SyncError(); !s.ok()) return s;
    // Bytes appended while the sync runs (when IsSyncThreadSafe) are not counted as durable.
    const uint64_t end = size_.load();
    rocksdb::IOStatus s = target()->Sync(options, dbg);
    if (s.ok()) fs_->Synced(name_, end);
    return s;
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = fs_->SyncError(); !s.ok()) return s;
    const uint64_t end = size_.load();
    rocksdb::IOStatus s = target()->Fsync(options, dbg);
    if (s.ok()) fs_->Synced(name_, end);
    return s;
  }
  // Starts write-back of a range but promises nothing about durability: not a sync here.
  rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = fs_->WriteError(); !s.ok()) return s;
    return target()->RangeSync(offset, nbytes, options, dbg);
  }
  rocksdb::IOStatus Allocate(uint64_t offset, uint64_t len, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = fs_->WriteError(/*uses_space=*/true); !s.ok()) return s;
    return target()->Allocate(offset, len, options, dbg);
  }
  // Close makes nothing durable. After a power cut the descriptor is still released (the test
  // process lives on), but the caller sees the failure.
  rocksdb::IOStatus Close(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = target()->Close(options, dbg);
    if (rocksdb::IOStatus cut = fs_->WriteError(); !cut.ok()) return cut;
    return s;
  }

 private:
  void PositionedAppended(uint64_t end) {
    uint64_t size = size_.load();
    while (end > size && !size_.compare_exchange_weak(size, end)) {
    }
    fs_->Appended(name_, std::max(size, end));
  }

  const std::string name_;
  std::atomic<uint64_t> size_;  // Sync may run concurrently with Append
  FaultFs* const fs_;
};

// A directory whose Fsync makes the entries changed in it durable.
class FaultFs::Directory final : public rocksdb::FSDirectoryWrapper {
 public:
  Directory(std::string name, FaultFs* fs, std::unique_ptr<rocksdb::FSDirectory> dir)
      : FSDirectoryWrapper(std::move(dir)), name_(std::move(name)), fs_(fs) {}

  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (rocksdb::IOStatus s = fs_->SyncError(); !s.ok()) return s;
    rocksdb::IOStatus s = FSDirectoryWrapper::Fsync(options, dbg);
    if (s.ok()) fs_->DirectorySynced(name_);
    return s;
  }
  rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions& options,
                                        rocksdb::IODebugContext* dbg,
                                        const rocksdb::DirFsyncOptions& dir_options) override {
    if (rocksdb::IOStatus s = fs_->SyncError(); !s.ok()) return s;
    rocksdb::IOStatus s = FSDirectoryWrapper::FsyncWithDirOptions(options, dbg, dir_options);
    if (s.ok()) fs_->DirectorySynced(name_);
    return s;
  }

 private:
  const std::string name_;
  FaultFs* const fs_;
};

FaultFs::FaultFs(std::shared_ptr<rocksdb::FileSystem> base) : FileSystemWrapper(std::move(base)) {}

void FaultFs::PowerCut() {
  absl::MutexLock lock(&mu_);
  power_cut_ = true;
}

void FaultFs::PowerCutAtCall(uint64_t n) {
  absl::MutexLock lock(&mu_);
  cut_at_call_ = calls_ + std::max<uint64_t>(n, 1);
}

uint64_t FaultFs::MutatingCalls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

void FaultFs::CountCall() {
  ++calls_;
  if (cut_at_call_ != 0 && calls_ >= cut_at_call_) power_cut_ = true;
}

void FaultFs::FailSyncs(bool fail) {
  absl::MutexLock lock(&mu_);
  fail_syncs_ = fail;
}

void FaultFs::FillDisk(bool full) {
  absl::MutexLock lock(&mu_);
  disk_full_ = full;
}

rocksdb::IOStatus FaultFs::WriteError(bool uses_space) {
  absl::MutexLock lock(&mu_);
  CountCall();
  if (power_cut_) return rocksdb::IOStatus::IOError("fault_fs: power cut");
  if (uses_space && disk_full_) {
    // As the POSIX file system reports ENOSPC: NoSpace, with a path in the message.
    return rocksdb::IOStatus::NoSpace("While appending to file: fault_fs",
                                      "No space left on device");
  }
  return rocksdb::IOStatus::OK();
}

rocksdb::IOStatus FaultFs::SyncError() {
  absl::MutexLock lock(&mu_);
  CountCall();
  if (power_cut_) return rocksdb::IOStatus::IOError("fault_fs: power cut");
  if (fail_syncs_) return rocksdb::IOStatus::IOError("fault_fs: injected sync failure");
  return rocksdb::IOStatus::OK();
}

void FaultFs::Appended(const std::string& name, uint64_t end) {
  absl::MutexLock lock(&mu_);
  FileState& state = files_[name];
  state.written = std::max(state.written, end);
}

void FaultFs::Synced(const std::string& name, uint64_t end) {
  absl::MutexLock lock(&mu_);
  FileState& state = files_[name];
  state.synced = std::max(state.synced, std::min(end, state.written));
}

void FaultFs::Truncated(const std::string& name, uint64_t size) {
  absl::MutexLock lock(&mu_);
  auto it = files_.find(name);
  if (it == files_.end()) return;  // untracked: its contents count as durable
  it->second.written = size;
  it->second.synced = std::min(it->second.synced, size);
}

void FaultFs::DirectorySynced(const std::string& dir) {
  absl::MutexLock lock(&mu_);
  for (auto it = changed_entries_.begin(); it != changed_entries_.end();) {
    it = DirName(it->first) == dir ? changed_entries_.erase(it) : std::next(it);
  }
}

bool FaultFs::Tracked(const std::string& name, FileState* state) const {
  absl::MutexLock lock(&mu_);
  auto it = files_.find(name);
  if (it == files_.end()) return false;
  *state = it->second;
  return true;
}

std::string FaultFs::DurableContents(const std::string& name) const {
  std::ifstream in(name, std::ios::binary);
  std::string contents((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (auto it = files_.find(name); it != files_.end() && contents.size() > it->second.synced) {
    contents.resize(it->second.synced);
  }
  return contents;
}

void FaultFs::RememberEntry(const std::string& name) {
  if (changed_entries_.count(name) != 0) return;  // the first change since the sync decides
  DurableEntry entry;
  std::error_code error;
  entry.existed = std::filesystem::exists(name, error);
  if (entry.existed) entry.contents = DurableContents(name);
  changed_entries_.emplace(name, std::move(entry));
}

rocksdb::IOStatus FaultFs::NewWritableFile(const std::string& name,
                                           const rocksdb::FileOptions& options,
                                           std::unique_ptr<rocksdb::FSWritableFile>* result,
                                           rocksdb::IODebugContext* dbg) {
  if (rocksdb::IOStatus s = WriteError(); !s.ok()) return s;
  {
    absl::MutexLock lock(&mu_);
    RememberEntry(name);
  }
  rocksdb::IOStatus s = target()->NewWritableFile(name, options, result, dbg);
  if (!s.ok()) return s;
  {
    absl::MutexLock lock(&mu_);
    files_[name] = FileState{};
  }
  *result = std::make_unique<File>(name, 0, this, std::move(*result));
  return s;
}

rocksdb::IOStatus FaultFs::ReopenWritableFile(const std::string& name,
                                              const rocksdb::FileOptions& options,
                                              std::unique_ptr<rocksdb::FSWritableFile>* result,
                                              rocksdb::IODebugContext* dbg) {
  if (rocksdb::IOStatus s = WriteError(); !s.ok()) return s;
  std::error_code error;
  const bool existed = std::filesystem::exists(name, error);
  if (!existed) {
    absl::MutexLock lock(&mu_);
    RememberEntry(name);
  }
  rocksdb::IOStatus s = target()->ReopenWritableFile(name, options, result, dbg);
  if (!s.ok()) return s;
  const uint64_t size = existed ? std::filesystem::file_size(name, error) : 0;
  {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = files_.try_emplace(name, FileState{size, size});
    if (!inserted) it->second.written = size;  // tracked before: its synced length stands
  }
  *result = std::make_unique<File>(name, size, this, std::move(*result));
  return s;
}

rocksdb::IOStatus FaultFs::ReuseWritableFile(const std::string& /*name*/,
                                             const std::string& /*old_name*/,
                                             const rocksdb::FileOptions& /*options*/,
                                             std::unique_ptr<rocksdb::FSWritableFile>* /*result*/,
                                             rocksdb::IODebugContext* /*dbg*/) {
  return rocksdb::IOStatus::NotSupported("fault_fs: ReuseWritableFile (WAL recycling)");
}

rocksdb::IOStatus FaultFs::NewRandomRWFile(const std::string& name,
                                           const rocksdb::FileOptions& options,
                                           std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                           rocksdb::IODebugContext* dbg) {
  if (rocksdb::IOStatus s = WriteError(); !s.ok()) return s;
  return target()->NewRandomRWFile(name, options, result, dbg);
}

rocksdb::IOStatus FaultFs::NewDirectory(const std::string& name, const rocksdb::IOOptions& options,
                                        std::unique_ptr<rocksdb::FSDirectory>* result,
                                        rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSDirectory> dir;
  rocksdb::IOStatus s = target()->NewDirectory(name, options, &dir, dbg);
  if (!s.ok()) return s;
  *result = std::make_unique<Directory>(TrimTrailingSlashes(name), this, std::move(dir));
  return s;
}

rocksdb::IOStatus FaultFs::DeleteFile(const std::string& name, const rocksdb::IOOptions& options,
                                      rocksdb::IODebugContext* dbg) {
  if (rocksdb::IOStatus s = WriteError(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  RememberEntry(name);
  rocksdb::IOStatus s = target()->DeleteFile(name, options, dbg);
  if (s.ok()) files_.erase(name);
  return s;
}

rocksdb::IOStatus FaultFs::RenameFile(const std::string& from, const std::string& to,
                                      const rocksdb::IOOptions& options,
                                      rocksdb::IODebugContext* dbg) {
  if (rocksdb::IOStatus s = WriteError(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  RememberEntry(from);
  RememberEntry(to);
  rocksdb::IOStatus s = target()->RenameFile(from, to, options, dbg);
  if (!s.ok()) return s;
  files_.erase(to);
  if (auto it = files_.find(from); it != files_.end()) {
    files_.emplace(to, it->second);
    files_.erase(it);
  }
  return s;
}

rocksdb::IOStatus FaultFs::LinkFile(const std::string& from, const std::string& to,
                                    const rocksdb::IOOptions& options,
                                    rocksdb::IODebugContext* dbg) {
  if (rocksdb::IOStatus s = WriteError(); !s.ok()) return s;
  absl::MutexLock lock(&mu_);
  RememberEntry(to);
  return target()->LinkFile(from, to, options, dbg);
}

rocksdb::IOStatus FaultFs::Truncate(const std::string& name, size_t size,
                                    const rocksdb::IOOptions& options,
                                    rocksdb::IODebugContext* dbg) {
  if (rocksdb::IOStatus s = WriteError(); !s.ok()) return s;
  rocksdb::IOStatus s = target()->Truncate(name, size, options, dbg);
  if (s.ok()) Truncated(name, size);
  return s;
}

rocksdb::IOStatus FaultFs::CreateDir(const std::string& name, const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) {
  if (rocksdb::IOStatus s = WriteError(); !s.ok()) return s;
  return target()->CreateDir(name, options, dbg);
}

rocksdb::IOStatus FaultFs::CreateDirIfMissing(const std::string& name,
                                              const rocksdb::IOOptions& options,
                                              rocksdb::IODebugContext* dbg) {
  if (rocksdb::IOStatus s = WriteError(); !s.ok()) return s;
  return target()->CreateDirIfMissing(name, options, dbg);
}

rocksdb::IOStatus FaultFs::DeleteDir(const std::string& name, const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) {
  if (rocksdb::IOStatus s = WriteError(); !s.ok()) return s;
  return target()->DeleteDir(name, options, dbg);
}

absl::Status FaultFs::DropUnsyncedData() {
  absl::MutexLock lock(&mu_);
  std::error_code error;
  for (const auto& [name, state] : files_) {
    if (!std::filesystem::exists(name, error)) continue;
    const uintmax_t size = std::filesystem::file_size(name, error);
    if (!error && size > state.synced) std::filesystem::resize_file(name, state.synced, error);
    if (error) {
      return absl::InternalError(absl::StrCat("fault_fs: truncating ", name, ": ", error.message()));
    }
  }
  // After the truncation: an entry restored here gets the bytes it had at the directory sync.
  for (const auto& [name, entry] : changed_entries_) {
    // Unlinked first: the name may now share its file with another name (a hard link, as an
    // ingestion with move_files makes), whose data a restore must not touch.
    std::filesystem::remove(name, error);
    if (entry.existed && !error) {
      std::ofstream out(name, std::ios::binary | std::ios::trunc);
      out << entry.contents;
      if (!out.flush()) error = std::make_error_code(std::errc::io_error);
    }
    if (error) {
      return absl::InternalError(absl::StrCat("fault_fs: restoring ", name, ": ", error.message()));
    }
  }
  files_.clear();
  changed_entries_.clear();
  power_cut_ = false;
  cut_at_call_ = 0;
  fail_syncs_ = false;
  disk_full_ = false;
  return absl::OkStatus();
}

}  // namespace outreach::store::faults
