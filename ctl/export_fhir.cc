#include "ctl/export_fhir.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "ctl/fhir/fhir_mapping.h"

namespace outreach::ctl {
namespace {

using fhir::ResourceType;

constexpr uint64_t kChunk = 1000;
constexpr ResourceType kTypes[] = {ResourceType::kTask, ResourceType::kCommunication,
                                   ResourceType::kProvenance};

// The one way the export takes events from the store: EventStore::ReadEvents, whose records are
// store::ToEventRecord of each stored event (decoded, upcast) - what EventLog serves. Whatever
// the store does to personal fields on the way out (issue 17's decryption, or the marker of an
// erased patient) therefore reaches the FHIR files too; nothing here reads projection rows.
absl::StatusOr<std::vector<v1::EventRecord>> ReadExportEvents(const store::EventStore& store,
                                                              uint64_t from_position) {
  return store.ReadEvents(from_position, /*task_id=*/"", kChunk);
}

// The three files, each written as "<Type>.ndjson.partial" and renamed to "<Type>.ndjson" by
// Commit. Whatever is not committed is removed.
class NdjsonFiles {
 public:
  static absl::StatusOr<NdjsonFiles> Create(const std::string& dir) {
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    if (error) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create the output directory ", dir, ": ", error.message()));
    }
    NdjsonFiles files(dir);
    for (ResourceType type : kTypes) {
      const std::string path = files.PartialPath(type);
      std::FILE* f = std::fopen(path.c_str(), "wb");
      if (f == nullptr) {
        return absl::FailedPreconditionError(absl::StrCat("cannot write ", path));
      }
      files.files_[Index(type)] = f;
    }
    return files;
  }
  NdjsonFiles(NdjsonFiles&& other) noexcept
      : dir_(std::move(other.dir_)), files_{other.files_[0], other.files_[1], other.files_[2]} {
    for (std::FILE*& f : other.files_) f = nullptr;
    other.dir_.clear();
  }
  NdjsonFiles(const NdjsonFiles&) = delete;
  NdjsonFiles& operator=(const NdjsonFiles&) = delete;
  NdjsonFiles& operator=(NdjsonFiles&&) = delete;
  ~NdjsonFiles() {
    if (dir_.empty()) return;
    for (ResourceType type : kTypes) {
      if (std::FILE* f = files_[Index(type)]; f != nullptr) std::fclose(f);
      std::remove(PartialPath(type).c_str());
    }
  }

  absl::Status Write(ResourceType type, const std::string& line) {
    std::FILE* f = files_[Index(type)];
    if (std::fwrite(line.data(), 1, line.size(), f) != line.size() || std::fputc('\n', f) == EOF) {
      return absl::UnavailableError(absl::StrCat("writing ", PartialPath(type), " failed"));
    }
    return absl::OkStatus();
  }

  // Closes every file, then renames each over its final name.
  absl::Status Commit() {
    for (ResourceType type : kTypes) {
      std::FILE* f = std::exchange(files_[Index(type)], nullptr);
      if (std::fflush(f) != 0 || fsync(fileno(f)) != 0 || std::fclose(f) != 0) {
        return absl::UnavailableError(absl::StrCat("writing ", PartialPath(type), " failed"));
      }
    }
    for (ResourceType type : kTypes) {
      if (std::rename(PartialPath(type).c_str(), FinalPath(type).c_str()) != 0) {
        return absl::UnavailableError(absl::StrCat("cannot rename ", PartialPath(type), " to ",
                                                   FinalPath(type)));
      }
    }
    return absl::OkStatus();
  }

 private:
  explicit NdjsonFiles(std::string dir) : dir_(std::move(dir)) {}
  static int Index(ResourceType type) { return static_cast<int>(type); }
  std::string FinalPath(ResourceType type) const {
    return absl::StrCat(dir_, "/", fhir::ResourceTypeName(type), ".ndjson");
  }
  std::string PartialPath(ResourceType type) const {
    return absl::StrCat(FinalPath(type), ".partial");
  }

  std::string dir_;
  std::FILE* files_[3] = {nullptr, nullptr, nullptr};
};

}  // namespace

absl::StatusOr<FhirExportSummary> ExportFhir(const store::EventStore& store,
                                             const ExportFhirFlags& flags,
                                             absl::FunctionRef<void(uint64_t)> progress) {
  absl::StatusOr<NdjsonFiles> files = NdjsonFiles::Create(flags.out);
  if (!files.ok()) return files.status();
  auto write = [&](ResourceType type, const std::string& line) { return files->Write(type, line); };
  fhir::FhirExporter exporter({.practice = flags.practice, .from_position = flags.from});
  FhirExportSummary summary;
  summary.head_position = store.HeadPosition();
  for (uint64_t next = 1; next <= summary.head_position;) {
    absl::StatusOr<std::vector<v1::EventRecord>> chunk = ReadExportEvents(store, next);
    if (!chunk.ok()) return chunk.status();
    for (const v1::EventRecord& event : *chunk) {
      if (event.position() > summary.head_position) break;
      if (absl::Status s = exporter.Add(event, write); !s.ok()) return s;
    }
    progress(exporter.events_read());
    if (chunk->size() < kChunk) break;
    next = chunk->back().position() + 1;
  }
  if (absl::Status s = exporter.Finish(write); !s.ok()) return s;
  if (absl::Status s = files->Commit(); !s.ok()) return s;
  summary.events_read = exporter.events_read();
  summary.tasks = exporter.count(ResourceType::kTask);
  summary.communications = exporter.count(ResourceType::kCommunication);
  summary.provenances = exporter.count(ResourceType::kProvenance);
  return summary;
}

}  // namespace outreach::ctl
