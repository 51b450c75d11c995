#include "server/reflection_service.h"

#include <set>
#include <utility>

#include "absl/strings/string_view.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpc/reflection/v1/reflection.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "server/grpc_status.h"

namespace outreach::server {
namespace {

namespace pb = google::protobuf;

// The two versions differ only in their package: one implementation, typed by this traits pair.
struct V1alpha {
  using Service = grpc::reflection::v1alpha::ServerReflection;
  using Request = grpc::reflection::v1alpha::ServerReflectionRequest;
  using Response = grpc::reflection::v1alpha::ServerReflectionResponse;
  static constexpr absl::string_view kMethod =
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
};
struct V1 {
  using Service = grpc::reflection::v1::ServerReflection;
  using Request = grpc::reflection::v1::ServerReflectionRequest;
  using Response = grpc::reflection::v1::ServerReflectionResponse;
  static constexpr absl::string_view kMethod =
      "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
};

template <typename Response>
void Error(grpc::StatusCode code, absl::string_view message, Response* response) {
  response->mutable_error_response()->set_error_code(static_cast<int32_t>(code));
  response->mutable_error_response()->set_error_message(std::string(message));
}

// `file` and, before it, every file it imports (transitively), each once.
template <typename Response>
void AddFileAndDependencies(const pb::FileDescriptor* file, std::set<std::string>* seen,
                            Response* response) {
  if (!seen->insert(file->name()).second) return;
  pb::FileDescriptorProto proto;
  file->CopyTo(&proto);
  response->mutable_file_descriptor_response()->add_file_descriptor_proto(
      proto.SerializeAsString());
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddFileAndDependencies(file->dependency(i), seen, response);
  }
}

// What reflection may describe: the services it lists, and the files that define them and
// everything they use. Other files in the process's pool (the storage schema, the standard
// library's own) are not part of the API and are answered NOT_FOUND like unknown names.
struct Catalog {
  std::vector<std::string> services;
  std::set<std::string> files;

  explicit Catalog(std::vector<std::string> names) : services(std::move(names)) {
    const pb::DescriptorPool* pool = pb::DescriptorPool::generated_pool();
    for (const std::string& name : services) {
      if (const pb::ServiceDescriptor* service = pool->FindServiceByName(name)) {
        AddFile(service->file());
      }
    }
  }
  void AddFile(const pb::FileDescriptor* file) {
    if (!files.insert(file->name()).second) return;
    for (int i = 0; i < file->dependency_count(); ++i) AddFile(file->dependency(i));
  }
  // `file` if it may be described, else nullptr.
  const pb::FileDescriptor* Served(const pb::FileDescriptor* file) const {
    return file != nullptr && files.count(file->name()) > 0 ? file : nullptr;
  }
};

template <typename V>
void Answer(const Catalog& catalog, const typename V::Request& request,
            typename V::Response* response) {
  using Request = typename V::Request;
  const pb::DescriptorPool* pool = pb::DescriptorPool::generated_pool();
  response->set_valid_host(request.host());
  *response->mutable_original_request() = request;
  std::set<std::string> seen;
  switch (request.message_request_case()) {
    case Request::kFileByFilename: {
      const pb::FileDescriptor* file =
          catalog.Served(pool->FindFileByName(request.file_by_filename()));
      if (file == nullptr) return Error(grpc::StatusCode::NOT_FOUND, "File not found.", response);
      AddFileAndDependencies(file, &seen, response);
      return;
    }
    case Request::kFileContainingSymbol: {
      const pb::FileDescriptor* file =
          catalog.Served(pool->FindFileContainingSymbol(request.file_containing_symbol()));
      if (file == nullptr) {
        return Error(grpc::StatusCode::NOT_FOUND, "Symbol not found.", response);
      }
      AddFileAndDependencies(file, &seen, response);
      return;
    }
    case Request::kFileContainingExtension: {
      const pb::Descriptor* type =
          pool->FindMessageTypeByName(request.file_containing_extension().containing_type());
      if (type == nullptr || catalog.Served(type->file()) == nullptr) {
        return Error(grpc::StatusCode::NOT_FOUND, "Type not found.", response);
      }
      const pb::FieldDescriptor* extension = pool->FindExtensionByNumber(
          type, request.file_containing_extension().extension_number());
      if (extension == nullptr || catalog.Served(extension->file()) == nullptr) {
        return Error(grpc::StatusCode::NOT_FOUND, "Extension not found.", response);
      }
      AddFileAndDependencies(extension->file(), &seen, response);
      return;
    }
    case Request::kAllExtensionNumbersOfType: {
      const pb::Descriptor* type =
          pool->FindMessageTypeByName(request.all_extension_numbers_of_type());
      if (type == nullptr || catalog.Served(type->file()) == nullptr) {
        return Error(grpc::StatusCode::NOT_FOUND, "Type not found.", response);
      }
      std::vector<const pb::FieldDescriptor*> extensions;
      pool->FindAllExtensions(type, &extensions);
      auto* numbers = response->mutable_all_extension_numbers_response();
      numbers->set_base_type_name(type->full_name());
      for (const pb::FieldDescriptor* extension : extensions) {
        if (catalog.Served(extension->file()) != nullptr) {
          numbers->add_extension_number(extension->number());
        }
      }
      return;
    }
    case Request::kListServices:
      for (const std::string& name : catalog.services) {
        response->mutable_list_services_response()->add_service()->set_name(name);
      }
      return;
    case Request::MESSAGE_REQUEST_NOT_SET:
      break;
  }
  Error(grpc::StatusCode::UNIMPLEMENTED, "", response);
}

// One ServerReflectionInfo stream: read a request, write its answer, until the client is done.
// One operation in flight at a time; deletes itself in OnDone.
template <typename V>
class ReflectionReactor final
    : public grpc::ServerBidiReactor<typename V::Request, typename V::Response> {
 public:
  ReflectionReactor(const CallSecurity* security, const Catalog* catalog,
                    grpc::CallbackServerContext* context)
      : catalog_(catalog) {
    absl::StatusOr<Caller> caller = security->Authorize(*context, V::kMethod);
    if (!caller.ok()) {
      this->Finish(ToGrpcStatus(caller.status()));
      return;
    }
    this->StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client is done (or gone)
      this->Finish(grpc::Status::OK);
      return;
    }
    response_.Clear();
    Answer<V>(*catalog_, request_, &response_);
    this->StartWrite(&response_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      this->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled"));
      return;
    }
    this->StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  const Catalog* const catalog_;
  typename V::Request request_;
  typename V::Response response_;
};

template <typename V>
class ReflectionService final : public V::Service::CallbackService {
 public:
  ReflectionService(const CallSecurity* security, std::vector<std::string> services)
      : security_(security), catalog_(std::move(services)) {}

  grpc::ServerBidiReactor<typename V::Request, typename V::Response>* ServerReflectionInfo(
      grpc::CallbackServerContext* context) override {
    return new ReflectionReactor<V>(security_, &catalog_, context);
  }

 private:
  const CallSecurity* const security_;
  const Catalog catalog_;
};

}  // namespace

std::unique_ptr<grpc::Service> NewReflectionV1alpha(const CallSecurity* security,
                                                    std::vector<std::string> services) {
  return std::make_unique<ReflectionService<V1alpha>>(security, std::move(services));
}

std::unique_ptr<grpc::Service> NewReflectionV1(const CallSecurity* security,
                                               std::vector<std::string> services) {
  return std::make_unique<ReflectionService<V1>>(security, std::move(services));
}

}  // namespace outreach::server
