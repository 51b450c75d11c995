// Server reflection (grpc.reflection.v1alpha and grpc.reflection.v1 ServerReflection), ours
// instead of libgrpc++_reflection's, so that it sits behind the role table like every other RPC:
// the stream is refused (UNAUTHENTICATED) unless the caller is an authenticated principal
// (Access::kAuthenticated in server/auth.cc). gRPC 1.51 gives no hook to refuse a call served
// by the library's own reflection service, so the project does not link it (its generated
// reflection messages would also clash with ours in protobuf's generated pool).
//
// Answers as gRPC's ProtoServerReflection does, from protobuf's generated DescriptorPool:
// list_services (the names given), file_by_filename and file_containing_symbol (the file and
// every file it depends on, transitively, each once per response), file_containing_extension,
// all_extension_numbers_of_type; NOT_FOUND in error_response for an unknown name, UNIMPLEMENTED
// for an empty request. Only the files that define the listed services, and the files they
// import, are described: the storage schema (outreach/v1/storage.proto) and anything else
// linked into the process is NOT_FOUND, as if it did not exist. Thread-safe; `security` must outlive the services.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "server/call_security.h"

namespace outreach::server {

// `services`: the full names list_services reports.
std::unique_ptr<grpc::Service> NewReflectionV1alpha(const CallSecurity* security,
                                                    std::vector<std::string> services);
std::unique_ptr<grpc::Service> NewReflectionV1(const CallSecurity* security,
                                               std::vector<std::string> services);

}  // namespace outreach::server
