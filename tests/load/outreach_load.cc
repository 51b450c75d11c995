// outreach-load: drives a running outreachd (on this machine only) with one or more scenarios
// and reports throughput and latency percentiles, as text or as one JSON object per scenario.
//
//   outreach-load --target=127.0.0.1:50051 --scenario=log_contact --concurrency=64 --duration=5
//   outreach-load --target=127.0.0.1:50051 --scenario=log_contact --rate=800 --json
//
// Scenarios are described in tests/load/workloads.h. Tasks are preloaded once per invocation
// for log_contact, list and mixed (--preload_tasks, kept open), and separately for
// log_and_close, which consumes its own --preload_close_tasks and creates more (untimed) if they
// run out; the JSON says how many it had to create ("inline_creates").
//
// Exit status: 0 when every scenario ran (even with request errors: see "errors"), 1 when the
// target cannot be reached or a preload fails, 2 for bad flags.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "server/flag_names.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/load/load_driver.h"
#include "tests/load/workloads.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "outreachd address: 127.0.0.1:PORT only");
ABSL_FLAG(std::string, scenario, "baseline",
          "comma-separated: baseline, create, log_contact, log_and_close, list, mixed, or all");
ABSL_FLAG(int, concurrency, 16, "closed loop: requests in flight");
ABSL_FLAG(double, duration, 5, "seconds per scenario");
ABSL_FLAG(double, rate, 0,
          "requests per second for an open loop (latency from each request's intended send "
          "time); 0 = closed loop at --concurrency");
ABSL_FLAG(int, max_in_flight, 10000, "open loop: most requests in flight at once");
ABSL_FLAG(int, channels, 4, "separate connections to spread requests over");
ABSL_FLAG(int, preload_tasks, 1000,
          "tasks created (and kept open) before log_contact, list and mixed run");
ABSL_FLAG(int, preload_close_tasks, -1,
          "tasks created before log_and_close for it to close (-1 = --preload_tasks)");
ABSL_FLAG(int, preload_concurrency, 64, "requests in flight while preloading");
ABSL_FLAG(bool, request_ids, true, "send a request_id (idempotency key) on every write");
ABSL_FLAG(std::string, token, "",
          "bearer token sent as \"authorization: Bearer <token>\" on every call (empty: none)");
ABSL_FLAG(bool, json, false, "print one JSON object per scenario on stdout");
ABSL_FLAG(bool, progress, true, "print a progress line on stderr every second");

namespace outreach::load {
namespace {

// Creates `count` tasks, adding their ids to `open_tasks` or `close_pool`.
bool Preload(const WorkloadContext& context, int count, OpenTasks* open_tasks,
             ClosePool* close_pool) {
  if (count <= 0) return true;
  std::unique_ptr<Workload> preload = MakePreloadWorkload(context, open_tasks, close_pool);
  RunOptions options;
  options.label = open_tasks != nullptr ? "preload" : "preload-close";
  options.concurrency = std::max(1, absl::GetFlag(FLAGS_preload_concurrency));
  options.max_requests = static_cast<uint64_t>(count);
  options.duration = absl::Minutes(30);
  options.progress = absl::GetFlag(FLAGS_progress);
  const RunResult result = Run(*preload, options);
  if (result.errors > 0) {
    absl::FPrintF(stderr, "outreach-load: %s: %d of %d creates failed, first: %s\n",
                  options.label, result.errors, count, result.first_error);
    return false;
  }
  absl::FPrintF(stderr, "outreach-load: %s: %d tasks in %.1fs (%.0f/s)\n", options.label, count,
                result.elapsed_seconds, result.rps);
  return true;
}

std::string JsonEscape(absl::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppendFormat(&out, "\\u%04x", c);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string ToJson(const std::string& scenario, const RunOptions& options,
                   const RunResult& result, int channels, uint64_t inline_creates) {
  std::vector<std::string> codes;
  for (const auto& [code, count] : result.error_codes) {
    codes.push_back(absl::StrFormat("\"%s\":%d", code, count));
  }
  return absl::StrFormat(
      "{\"scenario\":\"%s\",\"mode\":\"%s\",\"concurrency\":%d,\"rate\":%.1f,\"channels\":%d,"
      "\"duration_s\":%.3f,\"requests\":%d,\"errors\":%d,\"rps\":%.1f,\"p50_ms\":%.3f,"
      "\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,\"mean_ms\":%.3f,"
      "\"inline_creates\":%d,\"error_codes\":{%s},\"first_error\":\"%s\"}",
      scenario, options.rate > 0 ? "open" : "closed", options.concurrency, options.rate, channels,
      result.elapsed_seconds, result.requests, result.errors, result.rps, result.p50_ms,
      result.p90_ms, result.p99_ms, result.p999_ms, result.max_ms, result.mean_ms, inline_creates,
      absl::StrJoin(codes, ","), JsonEscape(result.first_error));
}

std::string ToText(const std::string& scenario, const RunOptions& options,
                   const RunResult& result) {
  std::string out = absl::StrFormat(
      "%-13s %s  %9d requests  %9.1f req/s  errors %d  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f"
      "  max %.3f ms",
      scenario,
      options.rate > 0 ? absl::StrFormat("open %.0f/s", options.rate)
                       : absl::StrFormat("c=%d", options.concurrency),
      result.requests, result.rps, result.errors, result.p50_ms, result.p90_ms, result.p99_ms,
      result.p999_ms, result.max_ms);
  if (!result.first_error.empty()) absl::StrAppend(&out, "\n  first error: ", result.first_error);
  return out;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "outreach-load --target=127.0.0.1:50051 --scenario=log_contact --concurrency=64 "
      "--duration=5 [--rate=R] [--json]\nLoad generator for outreachd (loopback only).");
  std::vector<std::string> normalized = outreach::server::NormalizeFlagNames(argc, argv);
  std::vector<char*> normalized_argv;
  for (std::string& arg : normalized) normalized_argv.push_back(arg.data());
  absl::ParseCommandLine(static_cast<int>(normalized_argv.size()), normalized_argv.data());

  std::vector<std::string> scenarios =
      absl::StrSplit(absl::GetFlag(FLAGS_scenario), ',', absl::SkipEmpty());
  if (scenarios.size() == 1 && scenarios[0] == "all") scenarios = ScenarioNames();
  for (const std::string& scenario : scenarios) {
    if (std::find(ScenarioNames().begin(), ScenarioNames().end(), scenario) ==
        ScenarioNames().end()) {
      absl::FPrintF(stderr, "outreach-load: --scenario: unknown scenario \"%s\"\n", scenario);
      return 2;
    }
  }
  const double duration = absl::GetFlag(FLAGS_duration);
  const int concurrency = absl::GetFlag(FLAGS_concurrency);
  const double rate = absl::GetFlag(FLAGS_rate);
  if (scenarios.empty() || !(duration > 0) || duration > 3600 || concurrency < 1 || rate < 0 ||
      absl::GetFlag(FLAGS_max_in_flight) < 1) {
    absl::FPrintF(stderr,
                  "outreach-load: want a scenario, 0 < --duration <= 3600, --concurrency >= 1, "
                  "--rate >= 0, --max_in_flight >= 1\n");
    return 2;
  }

  absl::StatusOr<std::unique_ptr<Connections>> connections =
      Connections::Open(absl::GetFlag(FLAGS_target), absl::GetFlag(FLAGS_channels));
  if (!connections.ok()) {
    absl::FPrintF(stderr, "outreach-load: %s\n", connections.status().message());
    return 2;
  }
  if (!(*connections)->WaitConnected(absl::Seconds(10))) {
    absl::FPrintF(stderr, "outreach-load: cannot connect to %s within 10s\n",
                  absl::GetFlag(FLAGS_target));
    return 1;
  }

  const absl::Time now = absl::Now();
  WorkloadContext context;
  context.connections = connections->get();
  context.run_nonce = absl::StrFormat("ld%x%x", absl::ToUnixMicros(now), getpid());
  context.tomorrow_utc = absl::ToCivilDay(now, absl::UTCTimeZone()) + 1;
  context.request_ids = absl::GetFlag(FLAGS_request_ids);
  context.bearer_token = absl::GetFlag(FLAGS_token);

  const auto uses = [&](const char* name) {
    return std::find(scenarios.begin(), scenarios.end(), name) != scenarios.end();
  };
  OpenTasks open_tasks;
  if (uses("log_contact") || uses("list") || uses("mixed")) {
    if (!Preload(context, absl::GetFlag(FLAGS_preload_tasks), &open_tasks, nullptr)) return 1;
  }
  open_tasks.Freeze();

  for (const std::string& scenario : scenarios) {
    ClosePool close_pool;
    if (scenario == "log_and_close") {
      int count = absl::GetFlag(FLAGS_preload_close_tasks);
      if (count < 0) count = absl::GetFlag(FLAGS_preload_tasks);
      if (!Preload(context, count, nullptr, &close_pool)) return 1;
    }
    absl::StatusOr<std::unique_ptr<Workload>> workload =
        MakeWorkload(scenario, context, &open_tasks, &close_pool);
    if (!workload.ok()) {
      absl::FPrintF(stderr, "outreach-load: %s\n", workload.status().message());
      return 2;
    }
    RunOptions options;
    options.concurrency = concurrency;
    options.rate = rate;
    options.max_in_flight = absl::GetFlag(FLAGS_max_in_flight);
    options.duration = absl::Seconds(duration);
    options.progress = absl::GetFlag(FLAGS_progress);
    options.label = rate > 0 ? absl::StrFormat("%s open %.0f/s", scenario, rate)
                             : absl::StrFormat("%s c=%d", scenario, concurrency);
    const RunResult result = Run(**workload, options);
    if (absl::GetFlag(FLAGS_json)) {
      absl::PrintF("%s\n", ToJson(scenario, options, result, (*connections)->size(),
                                  close_pool.inline_creates()));
    } else {
      absl::PrintF("%s\n", ToText(scenario, options, result));
    }
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace outreach::load

int main(int argc, char** argv) { return outreach::load::Main(argc, argv); }
