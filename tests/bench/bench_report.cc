// outreach-bench-report: turns the raw results of one `make bench` run into the table of issue
// 18's targets 1-7 (each figure beside its target, MET or MISS; issue 16's report target after
// them) and bench-results.json.
//
//   outreach-bench-report --load=load.jsonl --open=open.jsonl --fsync=fsync.jsonl --pg=pg.jsonl
//                         --store_bench=store_bench.json --data=data.json --machine="..."
//                         --out=bench-results.json
//
// Inputs: one outreach-load JSON object per line (--load: closed-loop runs; --open: the
// open-loop runs, three for target 5), outreach-fsync-probe's lines (--fsync), the PostgreSQL
// anchor's lines (--pg, tests/bench/pg_anchor.sh), Google Benchmark's JSON (--store_bench), and
// outreach-bench-data's object (--data). A missing or empty input leaves its figures "not
// measured" (and its targets MISS). Every target is a comparison within this one run.
// JSON is parsed into google.protobuf.Struct, so no JSON library is needed.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

ABSL_FLAG(std::string, load, "", "closed-loop outreach-load results, one JSON object a line");
ABSL_FLAG(std::string, open, "", "open-loop outreach-load result(s), one JSON object a line");
ABSL_FLAG(std::string, fsync, "",
          "outreach-fsync-probe results, one a line, each labelled \"when\": closed_c1 (before "
          "the concurrency-1 runs) or open_loop (before the open-loop runs)");
ABSL_FLAG(std::string, pg, "", "the PostgreSQL anchor's results (pg_anchor.sh), one a line");
ABSL_FLAG(std::string, store_bench, "", "store_bench --benchmark_out JSON");
ABSL_FLAG(std::string, data, "", "outreach-bench-data JSON");
ABSL_FLAG(std::string, machine, "", "a description of the machine, for the record");
ABSL_FLAG(std::string, out, "bench-results.json", "where to write the results");

namespace outreach::bench {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

std::optional<Struct> Parse(const std::string& json) {
  Struct object;
  if (!google::protobuf::util::JsonStringToMessage(json, &object).ok()) return std::nullopt;
  return object;
}

std::optional<Struct> ParseFile(const std::string& path) {
  return path.empty() ? std::nullopt : Parse(ReadFile(path));
}

std::vector<Struct> ParseLines(const std::string& path) {
  std::vector<Struct> objects;
  if (path.empty()) return objects;
  for (absl::string_view line : absl::StrSplit(ReadFile(path), '\n', absl::SkipEmpty())) {
    if (std::optional<Struct> object = Parse(std::string(line))) objects.push_back(*object);
  }
  return objects;
}

std::optional<double> Number(const Struct& object, const std::string& key) {
  auto it = object.fields().find(key);
  if (it == object.fields().end() || it->second.kind_case() != Value::kNumberValue) {
    return std::nullopt;
  }
  return it->second.number_value();
}

std::string String(const Struct& object, const std::string& key) {
  auto it = object.fields().find(key);
  return it == object.fields().end() ? "" : it->second.string_value();
}

const Struct* Child(const Struct& object, const std::string& key) {
  auto it = object.fields().find(key);
  if (it == object.fields().end() || it->second.kind_case() != Value::kStructValue) return nullptr;
  return &it->second.struct_value();
}

Value NumberValue(double number) {
  Value value;
  value.set_number_value(number);
  return value;
}

Value StringValue(const std::string& text) {
  Value value;
  value.set_string_value(text);
  return value;
}

Value StructValue(const Struct& object) {
  Value value;
  *value.mutable_struct_value() = object;
  return value;
}

struct Target {
  std::string id;
  std::string what;
  std::string target;
  std::optional<double> measured;
  std::string measured_text;  // how to print `measured` (filled by the caller)
  bool met = false;
};

// `format` is an absl::FormatSpec so that clang checks each call's literal against a double.
std::string Fmt(std::optional<double> value, const absl::FormatSpec<double>& format) {
  return value.has_value() ? absl::StrFormat(format, *value) : std::string("n/a");
}

std::optional<double> Scaled(std::optional<double> value, double divisor) {
  return value.has_value() ? std::optional<double>(*value / divisor) : std::nullopt;
}

std::optional<double> Ratio(std::optional<double> a, std::optional<double> b) {
  return a && b && *b > 0 ? std::optional<double>(*a / *b) : std::nullopt;
}

// Every input of one run.
struct Inputs {
  std::vector<Struct> closed;
  std::vector<Struct> open;
  std::vector<Struct> pg;
  std::vector<Struct> fsync;
  std::optional<Struct> data;
  std::optional<Struct> micro;
};

// A figure of the fsync probe taken `when` ("closed_c1" or "open_loop").
std::optional<double> FsyncNumber(const Inputs& in, const std::string& when,
                                  const std::string& key) {
  for (const Struct& probe : in.fsync) {
    if (String(probe, "when") == when) return Number(probe, key);
  }
  return std::nullopt;
}

// A closed-loop figure of one scenario at one concurrency.
std::optional<double> Closed(const Inputs& in, const std::string& scenario, int concurrency,
                             const std::string& key) {
  for (const Struct& run : in.closed) {
    if (String(run, "scenario") == scenario &&
        static_cast<int>(Number(run, "concurrency").value_or(0)) == concurrency) {
      return Number(run, key);
    }
  }
  return std::nullopt;
}

// The PostgreSQL anchor's tps at `clients`.
std::optional<double> PgTps(const Inputs& in, int clients) {
  for (const Struct& run : in.pg) {
    if (static_cast<int>(Number(run, "clients").value_or(0)) == clients) return Number(run, "tps");
  }
  return std::nullopt;
}

std::optional<double> DataNumber(const Inputs& in, const std::string& key,
                                 const std::string& child = "") {
  if (!in.data.has_value()) return std::nullopt;
  if (child.empty()) return Number(*in.data, key);
  const Struct* object = Child(*in.data, child);
  return object != nullptr ? Number(*object, key) : std::nullopt;
}

// The closed-loop table, each scenario with its ratio to the baseline at the same concurrency;
// returns the rows (with "ratio_to_baseline") for the results file.
google::protobuf::ListValue PrintScenarios(const Inputs& in) {
  google::protobuf::ListValue scenarios;
  absl::PrintF("\n== Scenarios (closed loop; ratio = rps / baseline rps at the same concurrency)\n");
  absl::PrintF("%-14s %5s %10s %7s %9s %9s %9s %9s %7s\n", "scenario", "conc", "rps", "ratio",
               "p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors");
  for (const Struct& run : in.closed) {
    Struct row = run;
    const int concurrency = static_cast<int>(Number(run, "concurrency").value_or(0));
    const std::optional<double> ratio =
        Ratio(Number(run, "rps"), Closed(in, "baseline", concurrency, "rps"));
    if (ratio) (*row.mutable_fields())["ratio_to_baseline"] = NumberValue(*ratio);
    absl::PrintF("%-14s %5d %10s %7s %9s %9s %9s %9s %7s\n", String(run, "scenario"), concurrency,
                 Fmt(Number(run, "rps"), "%.0f"), Fmt(ratio, "%.3f"),
                 Fmt(Number(run, "p50_ms"), "%.3f"), Fmt(Number(run, "p99_ms"), "%.3f"),
                 Fmt(Number(run, "p999_ms"), "%.3f"), Fmt(Number(run, "max_ms"), "%.3f"),
                 Fmt(Number(run, "errors"), "%.0f"));
    *scenarios.add_values() = StructValue(row);
  }
  return scenarios;
}

// The size of the main log, for the figures' names.
std::string EventCount(const Inputs& in) { return Fmt(DataNumber(in, "events"), "%.0f"); }

// log_contact through outreachd beside the PostgreSQL anchor, per concurrency.
void PrintPostgresAnchor(const Inputs& in) {
  absl::PrintF("\n== log_contact vs the PostgreSQL anchor (append event + upsert projection per "
               "transaction, fsync on, pgbench, no RPC layer)\n");
  absl::PrintF("%5s %16s %14s %9s\n", "conc", "log_contact rps", "postgres tps", "ratio");
  for (int c : {1, 16, 64}) {
    const std::optional<double> rps = Closed(in, "log_contact", c, "rps");
    absl::PrintF("%5d %16s %14s %9s\n", c, Fmt(rps, "%.0f"), Fmt(PgTps(in, c), "%.0f"),
                 Fmt(Ratio(rps, PgTps(in, c)), "x%.2f"));
  }
}

// Targets 1-3: throughput against the baseline and PostgreSQL, latency against the floor.
void AddThroughputTargets(const Inputs& in, std::vector<Target>& targets) {
  const std::optional<double> contact64 = Closed(in, "log_contact", 64, "rps");
  const std::optional<double> base64 = Closed(in, "baseline", 64, "rps");
  const std::optional<double> ratio1 = Ratio(contact64, base64);
  targets.push_back({"1", "log_contact c=64 rps / Health/Check baseline rps c=64", ">= 0.5",
                     ratio1,
                     absl::StrFormat("x%s (%s vs %s rps)", Fmt(ratio1, "%.3f"),
                                     Fmt(contact64, "%.0f"), Fmt(base64, "%.0f")),
                     ratio1.value_or(0) >= 0.5});
  const std::optional<double> ratio2 = Ratio(contact64, PgTps(in, 64));
  targets.push_back({"2", "log_contact c=64 rps / PostgreSQL anchor tps (64 clients)", ">= 4",
                     ratio2,
                     absl::StrFormat("x%s (%s rps vs %s tps)", Fmt(ratio2, "%.2f"),
                                     Fmt(contact64, "%.0f"), Fmt(PgTps(in, 64), "%.0f")),
                     ratio2.value_or(0) >= 4});
  const std::optional<double> contact_p50 = Closed(in, "log_contact", 1, "p50_ms");
  const std::optional<double> base_p50 = Closed(in, "baseline", 1, "p50_ms");
  const std::optional<double> fsync_p50 = FsyncNumber(in, "closed_c1", "fsync_p50_ms");
  std::optional<double> floor;
  if (base_p50 && fsync_p50) floor = *fsync_p50 + *base_p50 + 0.1;
  targets.push_back(
      {"3", "log_contact c=1 p50 vs fsync p50 + baseline c=1 p50 + 0.1 ms",
       absl::StrFormat("<= %s ms", Fmt(floor, "%.3f")), contact_p50,
       absl::StrFormat("%s ms (fsync %s + baseline %s + 0.1)", Fmt(contact_p50, "%.3f"),
                       Fmt(fsync_p50, "%.3f"), Fmt(base_p50, "%.3f")),
       contact_p50 && floor && *contact_p50 <= *floor});
}

// Target 4: the rebuild's rate, and that it reproduced the live projections byte for byte.
void AddRebuildTarget(const Inputs& in, std::vector<Target>& targets) {
  const std::optional<double> rate = DataNumber(in, "rebuild_events_per_s");
  const std::optional<double> identical = DataNumber(in, "rebuild_identical");
  targets.push_back({"4",
                     absl::StrFormat("rebuild, %s events, byte-identical to the live projections",
                                     EventCount(in)),
                     ">= 1000000 events/s, identical", rate,
                     absl::StrFormat("%s events/s, %s", Fmt(rate, "%.0f"),
                                     !identical ? "identity not checked"
                                     : *identical > 0 ? "identical"
                                                      : "NOT identical"),
                     rate.value_or(0) >= 1e6 && identical.value_or(0) > 0});
}

// Target 5: every open-loop run at half the maximum against the disk's own fsync p99.
void AddOpenLoopTarget(const Inputs& in, std::vector<Target>& targets) {
  constexpr int kRuns = 3;
  const std::optional<double> fsync_p99 = FsyncNumber(in, "open_loop", "fsync_p99_ms");
  std::optional<double> limit;
  if (fsync_p99) limit = 2 * *fsync_p99 + 1;
  std::vector<std::string> p99s;
  std::optional<double> worst;
  std::optional<double> rate;
  int met = 0;
  for (const Struct& run : in.open) {
    if (String(run, "scenario") != "log_contact") continue;
    const std::optional<double> p99 = Number(run, "p99_ms");
    rate = Number(run, "rate");
    p99s.push_back(Fmt(p99, "%.2f"));
    if (p99) worst = std::max(worst.value_or(0), *p99);
    if (p99 && limit && *p99 <= *limit) ++met;
  }
  targets.push_back(
      {"5", "log_contact open loop at half the max rps: p99, each of 3 runs",
       absl::StrFormat("<= 2 x fsync p99 + 1 = %s ms", Fmt(limit, "%.2f")), worst,
       absl::StrFormat("%s ms at %s/s (%d of %d met; fsync p99 %s ms)",
                       p99s.empty() ? std::string("n/a") : absl::StrJoin(p99s, ", "),
                       Fmt(rate, "%.0f"), met, kRuns, Fmt(fsync_p99, "%.3f")),
       met == kRuns && static_cast<int>(p99s.size()) == kRuns});
}

// Targets 6 and 7: the worklist at 200k and 2M tasks, start-up, memory and disk.
void AddDataTargets(const Inputs& in, std::vector<Target>& targets) {
  const std::optional<double> tasks = DataNumber(in, "tasks");
  const std::optional<double> large = DataNumber(in, "large_tasks");
  for (const auto& [id, prefix, count] :
       {std::tuple{"6a", "main", tasks}, std::tuple{"6b", "large", large}}) {
    const std::optional<double> p99 = DataNumber(in, "p99_ms", absl::StrCat(prefix, "_list_c1"));
    targets.push_back(
        {id, absl::StrFormat("ListTasks c=1 via gRPC (with access record), %s tasks: p99",
                             Fmt(count, "%.0f")),
         "<= 2 ms", p99,
         absl::StrFormat("%s ms (in-process %s ms)", Fmt(p99, "%.3f"),
                         Fmt(DataNumber(in, absl::StrCat(prefix, "_store_list_p99_ms")), "%.3f")),
         p99.value_or(1e9) <= 2});
  }
  const std::optional<double> raw = DataNumber(in, "startup_uncompacted_s");
  const std::optional<double> compacted = DataNumber(in, "main_startup_s");
  std::optional<double> startup;
  if (raw || compacted) startup = std::max(raw.value_or(0), compacted.value_or(0));
  targets.push_back({"7a",
                     absl::StrFormat("start-up to SERVING, %s events", EventCount(in)),
                     "<= 0.5 s", startup,
                     absl::StrFormat("%s s as loaded (WAL unflushed), %s s compacted",
                                     Fmt(raw, "%.3f"), Fmt(compacted, "%.3f")),
                     startup.value_or(1e9) <= 0.5});
  const std::optional<double> rss = Scaled(DataNumber(in, "large_peak_rss_bytes"), 1 << 20);
  targets.push_back(
      {"7b", absl::StrFormat("outreachd peak RSS, %s tasks", Fmt(large, "%.0f")), "<= 200 MiB",
       rss,
       absl::StrFormat("%s MiB (%s MiB at %s events)", Fmt(rss, "%.1f"),
                       Fmt(Scaled(DataNumber(in, "peak_rss_bytes"), 1 << 20), "%.1f"),
                       EventCount(in)),
       rss.value_or(1e9) <= 200});
  const std::optional<double> disk = DataNumber(in, "disk_to_event_bytes");
  targets.push_back(
      {"7c", "disk after compaction / serialized event bytes", "<= 0.6x", disk,
       absl::StrFormat("x%s (%s MiB on disk, %s MiB of events)", Fmt(disk, "%.2f"),
                       Fmt(Scaled(DataNumber(in, "disk_bytes_compacted"), 1 << 20), "%.1f"),
                       Fmt(Scaled(DataNumber(in, "event_bytes"), 1 << 20), "%.1f")),
       disk.value_or(1e9) <= 0.6});
}

// Issue 16: the 90-day report of one practice, in process (bench_data.cc MeasureStatsInProcess).
void AddReportTarget(const Inputs& in, std::vector<Target>& targets) {
  const std::optional<double> p99 = DataNumber(in, "stats_90d_p99_ms");
  targets.push_back({"16",
                     absl::StrFormat("90-day GetOutreachStats, one practice, %s events: p99",
                                     EventCount(in)),
                     "<= 20 ms", p99,
                     absl::StrFormat("%s ms in-process (p50 %s ms)", Fmt(p99, "%.3f"),
                                     Fmt(DataNumber(in, "stats_90d_p50_ms"), "%.3f")),
                     p99.value_or(1e9) <= 20});
}

// Prints the targets; returns them as rows for the results file.
google::protobuf::ListValue PrintTargets(const std::vector<Target>& targets) {
  absl::PrintF("\n== Targets (issue 18: 1-7; issue 16: the report)\n");
  absl::PrintF("%-3s %-64s %-33s %-6s %s\n", "#", "figure", "target", "result", "measured");
  google::protobuf::ListValue rows;
  int met = 0;
  for (const Target& t : targets) {
    const std::string measured = t.measured.has_value() ? t.measured_text : "not measured";
    absl::PrintF("%-3s %-64s %-33s %-6s %s\n", t.id, t.what, t.target, t.met ? "MET" : "MISS",
                 measured);
    met += t.met ? 1 : 0;
    Struct row;
    (*row.mutable_fields())["id"] = StringValue(t.id);
    (*row.mutable_fields())["figure"] = StringValue(t.what);
    (*row.mutable_fields())["target"] = StringValue(t.target);
    (*row.mutable_fields())["measured"] = StringValue(measured);
    if (t.measured) (*row.mutable_fields())["value"] = NumberValue(*t.measured);
    (*row.mutable_fields())["met"].set_bool_value(t.met);
    *rows.add_values() = StructValue(row);
  }
  absl::PrintF("\n%d of %d targets met.\n", met, static_cast<int>(targets.size()));
  return rows;
}

// The micro-benchmarks, as Google Benchmark reported them.
google::protobuf::ListValue PrintMicroBenchmarks(const Inputs& in) {
  google::protobuf::ListValue rows;
  if (!in.micro.has_value()) return rows;
  absl::PrintF("\n== Store micro-benchmarks (Google Benchmark)\n");
  absl::PrintF("%-58s %14s %16s\n", "benchmark", "real time", "items/s");
  auto it = in.micro->fields().find("benchmarks");
  if (it == in.micro->fields().end()) return rows;
  for (const Value& entry : it->second.list_value().values()) {
    const Struct& b = entry.struct_value();
    absl::PrintF("%-58s %11s %-2s %16s\n", String(b, "name"), Fmt(Number(b, "real_time"), "%.1f"),
                 String(b, "time_unit"), Fmt(Number(b, "items_per_second"), "%.0f"));
    Struct row;
    (*row.mutable_fields())["name"] = StringValue(String(b, "name"));
    (*row.mutable_fields())["real_time"] = NumberValue(Number(b, "real_time").value_or(0));
    (*row.mutable_fields())["time_unit"] = StringValue(String(b, "time_unit"));
    if (auto items = Number(b, "items_per_second")) {
      (*row.mutable_fields())["items_per_second"] = NumberValue(*items);
    }
    *rows.add_values() = StructValue(row);
  }
  return rows;
}

google::protobuf::ListValue ToList(const std::vector<Struct>& objects) {
  google::protobuf::ListValue list;
  for (const Struct& object : objects) *list.add_values() = StructValue(object);
  return list;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage("outreach-bench-report: the make bench table and results file");
  absl::ParseCommandLine(argc, argv);
  Inputs in;
  in.closed = ParseLines(absl::GetFlag(FLAGS_load));
  in.open = ParseLines(absl::GetFlag(FLAGS_open));
  in.pg = ParseLines(absl::GetFlag(FLAGS_pg));
  in.fsync = ParseLines(absl::GetFlag(FLAGS_fsync));
  in.data = ParseFile(absl::GetFlag(FLAGS_data));
  in.micro = ParseFile(absl::GetFlag(FLAGS_store_bench));

  Struct results;
  auto& fields = *results.mutable_fields();
  fields["machine"] = StringValue(absl::GetFlag(FLAGS_machine));
  fields["generated_at"] = StringValue(absl::FormatTime(absl::Now(), absl::UTCTimeZone()));
  *fields["scenarios"].mutable_list_value() = PrintScenarios(in);
  PrintPostgresAnchor(in);
  *fields["store_bench"].mutable_list_value() = PrintMicroBenchmarks(in);
  std::vector<Target> targets;
  AddThroughputTargets(in, targets);
  AddRebuildTarget(in, targets);
  AddOpenLoopTarget(in, targets);
  AddDataTargets(in, targets);
  AddReportTarget(in, targets);
  *fields["targets"].mutable_list_value() = PrintTargets(targets);
  *fields["open_loop"].mutable_list_value() = ToList(in.open);
  *fields["postgres_anchor"].mutable_list_value() = ToList(in.pg);
  *fields["fsync_probe"].mutable_list_value() = ToList(in.fsync);
  if (in.data.has_value()) fields["data"] = StructValue(*in.data);

  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  if (!google::protobuf::util::MessageToJsonString(results, &json, options).ok()) {
    absl::FPrintF(stderr, "outreach-bench-report: cannot serialize the results\n");
    return 1;
  }
  std::ofstream(absl::GetFlag(FLAGS_out)) << json;
  absl::PrintF("Wrote %s\n", absl::GetFlag(FLAGS_out));
  return 0;
}

}  // namespace
}  // namespace outreach::bench

int main(int argc, char** argv) { return outreach::bench::Main(argc, argv); }
