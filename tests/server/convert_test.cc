// The edge's pure translation helpers: actors, generated ids, fingerprints, status codes.
#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "domain/validation.h"
#include "server/convert.h"
#include "server/grpc_status.h"

namespace outreach::server {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(ResolveActorTest, AbsentIsAnonymous) {
  absl::StatusOr<std::string> actor = ResolveActor(std::nullopt);
  ASSERT_TRUE(actor.ok());
  EXPECT_EQ(*actor, "anonymous");
}

TEST(ResolveActorTest, ValidIdIsTheActor) {
  absl::StatusOr<std::string> actor = ResolveActor("nurse.kim:team-2");
  ASSERT_TRUE(actor.ok());
  EXPECT_EQ(*actor, "nurse.kim:team-2");
}

TEST(ResolveActorTest, EmptyMalformedOrReservedIsInvalidArgumentNamingXActor) {
  for (const char* bad : {"", "nurse kim", "kim@clinic", "system:expiry", "system:anything"}) {
    absl::StatusOr<std::string> actor = ResolveActor(bad);
    EXPECT_EQ(actor.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(actor.status().message()), StartsWith("x-actor:"));
  }
}

// A record written before the access log had limits (up to gRPC's 4 MiB request, copied into
// its filter) is cut to them when read, so that ReadAccessLog can always send it.
TEST(ToWireAccessRecordTest, CutsARecordWrittenBeforeTheLimitsAndSaysSo) {
  store::StoredAccessRecord stored;
  stored.record.set_sequence(7);
  stored.record.set_principal("nurse.kim");
  stored.record.set_rpc("/outreach.v1.TaskService/ListTasks");
  stored.record.set_filter(std::string(20 << 20, 'f'));
  for (int i = 0; i < 2000; ++i) stored.record.add_task_ids(absl::StrCat("t", i));
  stored.record.set_count(2000);
  stored.hash[0] = 0x42;
  const v1::AccessRecord wire = ToWireAccessRecord(stored);
  EXPECT_TRUE(wire.truncated());
  EXPECT_EQ(wire.sequence(), 7u);
  EXPECT_EQ(wire.principal(), "nurse.kim");
  EXPECT_EQ(wire.filter().size(), store::kMaxAccessFilterBytes);
  EXPECT_EQ(static_cast<std::size_t>(wire.task_ids_size()), store::kMaxAccessTaskIds);
  EXPECT_EQ(wire.count(), 2000u);
  EXPECT_EQ(wire.hash().size(), 32u);
  EXPECT_EQ(wire.hash()[0], 0x42);
  EXPECT_LT(wire.ByteSizeLong(), 64u << 10);

  store::StoredAccessRecord small;
  small.record.set_filter("patient_id: \"p-1\"");
  EXPECT_FALSE(ToWireAccessRecord(small).truncated());
}

TEST(NewTaskIdTest, IsAValidVersion4Uuid) {
  const std::string id = NewTaskId();
  EXPECT_TRUE(domain::IsValidId(id));
  ASSERT_EQ(id.size(), 36u);
  EXPECT_EQ(id[8], '-');
  EXPECT_EQ(id[13], '-');
  EXPECT_EQ(id[14], '4');
  EXPECT_EQ(id[18], '-');
  EXPECT_THAT(std::string("89ab"), HasSubstr(std::string(1, id[19])));
  EXPECT_EQ(id[23], '-');
}

TEST(NewTaskIdTest, IsUnique) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(NewTaskId());
  EXPECT_EQ(ids.size(), 1000u);
}

v1::CreateTaskRequest SampleCreate() {
  v1::CreateTaskRequest request;
  request.set_patient_id("p1");
  request.set_kind(v1::MANUAL);
  request.set_title("Book a visit");
  return request;
}

TEST(FingerprintTest, IgnoresTheRequestId) {
  v1::CreateTaskRequest a = SampleCreate();
  v1::CreateTaskRequest b = SampleCreate();
  a.set_request_id("r1");
  b.set_request_id("r2");
  EXPECT_EQ(Fingerprint("m", "alice", a), Fingerprint("m", "alice", b));
  EXPECT_EQ(Fingerprint("m", "alice", a).size(), 32u);
}

TEST(FingerprintTest, DependsOnMethodActorAndContent) {
  const v1::CreateTaskRequest a = SampleCreate();
  v1::CreateTaskRequest other = a;
  other.set_title("Book another visit");
  const std::string base = Fingerprint("m", "alice", a);
  EXPECT_NE(base, Fingerprint("n", "alice", a));
  EXPECT_NE(base, Fingerprint("m", "bob", a));
  EXPECT_NE(base, Fingerprint("m", "alice", other));
  // Length prefixes keep the parts apart.
  EXPECT_NE(Fingerprint("ab", "c", a), Fingerprint("a", "bc", a));
}

TEST(ToListQueryTest, PageSizeZeroMeansFifty) {
  absl::StatusOr<store::ListQuery> query = ToListQuery(v1::ListTasksRequest());
  ASSERT_TRUE(query.ok());
  EXPECT_EQ(query->page_size, 50);
  EXPECT_TRUE(query->statuses.empty());
  EXPECT_FALSE(query->follow_up_on_or_before.has_value());
}

TEST(ToListQueryTest, PageSizeBoundsAreInclusive) {
  v1::ListTasksRequest request;
  request.set_page_size(500);
  EXPECT_TRUE(ToListQuery(request).ok());
  request.set_page_size(1);
  EXPECT_TRUE(ToListQuery(request).ok());
  request.set_page_size(501);
  EXPECT_THAT(std::string(ToListQuery(request).status().message()), StartsWith("page_size:"));
}

TEST(ToCommandTest, UnsetTimestampIsAbsent) {
  v1::LogContactRequest request;
  request.set_task_id("t1");
  request.set_outcome(v1::NO_ANSWER);
  request.set_follow_up_date("2030-01-01");
  absl::StatusOr<domain::LogContactCommand> command = ToCommand(request, "anonymous");
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_FALSE(command->contacted_at.has_value());
  *request.mutable_contacted_at() = domain::ToProto(absl::FromUnixSeconds(1700000000));
  command = ToCommand(request, "anonymous");
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->contacted_at, absl::FromUnixSeconds(1700000000));
}

TEST(ToCommandTest, EmptyTaskIdIsGenerated) {
  absl::StatusOr<domain::CreateTaskCommand> command = ToCommand(SampleCreate(), "anonymous");
  ASSERT_TRUE(command.ok()) << command.status();
  EXPECT_EQ(command->task_id.size(), 36u);
  EXPECT_EQ(command->meta.actor, "anonymous");
}

TEST(GrpcStatusTest, EveryCanonicalCodeMapsOneToOne) {
  for (int code = 0; code <= 16; ++code) {
    const absl::Status status(static_cast<absl::StatusCode>(code), code == 0 ? "" : "why");
    const grpc::Status mapped = ToGrpcStatus(status);
    EXPECT_EQ(static_cast<int>(mapped.error_code()), code);
    if (code != 0) {
      EXPECT_EQ(mapped.error_message(), "why");
    }
  }
}

}  // namespace
}  // namespace outreach::server
