// Turns a checked-in text-format seed (tests/fuzz/corpus/<target>/*.textproto) into the bytes the
// fuzz target reads: the serialized request for a request target; for decode_event_fuzzer, a
// StoredEvent's position (fixed64, big-endian) followed by its "events" row value, chained to 32
// zero bytes.
//
//   fuzz_seed_tool <target> <in.textproto> <out>
//
// Exits non-zero, naming the file, when the seed does not parse: a broken seed fails the build.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "google/protobuf/text_format.h"
#include "outreach/v1/event_log.pb.h"
#include "outreach/v1/storage.pb.h"
#include "outreach/v1/task_service.pb.h"
#include "store/event_codec.h"
#include "store/keys.h"

namespace outreach::fuzz {
namespace {

bool Parse(const std::string& text, google::protobuf::Message* message) {
  return google::protobuf::TextFormat::ParseFromString(text, message);
}

// The fuzz input for `target` from `text`; false if the text does not parse or the target is
// unknown.
bool SeedBytes(const std::string& target, const std::string& text, std::string* out) {
  if (target == "decode_event_fuzzer") {
    storage::v1::StoredEvent event;
    if (!Parse(text, &event)) return false;
    store::Hash hash{};
    *out = store::keys::EncodeFixed64BE(event.position()) +
           store::EncodeEvent(event, store::ZeroHash(), &hash);
    return true;
  }
  v1::CreateTaskRequest create;
  v1::LogContactRequest log_contact;
  v1::ListTasksRequest list;
  v1::GetTaskRequest get;
  v1::ReadEventsRequest read;
  google::protobuf::Message* message = nullptr;
  if (target == "create_task_fuzzer") message = &create;
  if (target == "log_contact_fuzzer") message = &log_contact;
  if (target == "list_tasks_fuzzer") message = &list;
  if (target == "get_task_fuzzer") message = &get;
  if (target == "read_events_fuzzer") message = &read;
  if (message == nullptr || !Parse(text, message)) return false;
  return message->SerializeToString(out);
}

}  // namespace
}  // namespace outreach::fuzz

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: " << argv[0] << " <target> <in.textproto> <out>\n";
    return 2;
  }
  std::ifstream in(argv[2]);
  std::stringstream text;
  text << in.rdbuf();
  std::string bytes;
  if (!in || !outreach::fuzz::SeedBytes(argv[1], text.str(), &bytes)) {
    std::cerr << argv[2] << ": not a seed for " << argv[1] << "\n";
    return 1;
  }
  std::ofstream out(argv[3], std::ios::binary | std::ios::trunc);
  out << bytes;
  out.close();
  if (!out) {
    std::cerr << argv[3] << ": cannot write\n";
    return 1;
  }
  return 0;
}
