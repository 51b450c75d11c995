// deploy/k8s checked offline with the real tools: `kubectl kustomize` renders the base, each
// shard's overlay and the single-pod variant; yamllint passes on the sources; every rendered
// object validates against the Kubernetes schemas with unknown fields rejected
// (tests/deploy/k8s/validate.js, npm packages installed by `make test-deploy`); and the
// single-pod variant runs for real with `podman kube play` (health SERVING, then torn down).
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "tests/deploy/deploy_support.h"
#include "tests/e2e/outreachd_process.h"
#include "tests/testing/temp_dir.h"

#ifndef OUTREACH_BUILD_DIR
#error "OUTREACH_BUILD_DIR must name the build tree"
#endif

namespace outreach::deploy {
namespace {

using ::testing::HasSubstr;

const std::string kK8s = std::string(kSourceDir) + "/deploy/k8s";
const std::vector<std::string> kVariants = {"base", "overlays/shard-a", "overlays/shard-b",
                                            "overlays/shard-c", "single-pod"};

// Where `make test-deploy` installs tests/deploy/k8s/package.json's packages.
std::string NodeModules() {
  const char* modules = getenv("OUTREACH_NODE_MODULES");
  return modules != nullptr ? modules
                            : std::string(OUTREACH_BUILD_DIR) + "/deploy-npm/node_modules";
}

class KubernetesTest : public ::testing::Test {
 protected:
  ToolRun Render(const std::string& variant) {
    const std::vector<std::string> args = {"kubectl", "kustomize", kK8s + "/" + variant};
    ToolRun run = RunTool(args, dir_);
    EXPECT_EQ(run.exit_code, 0) << run.Describe(args);
    return run;
  }
  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  ToolRun Validate(const std::string& path) {
    struct stat info;
    if (stat(NodeModules().c_str(), &info) != 0) {
      ADD_FAILURE() << NodeModules() << " is missing: `make test-deploy` installs it (npm ci)";
      return ToolRun();
    }
    setenv("NODE_PATH", NodeModules().c_str(), 1);
    return RunTool({"node", std::string(kSourceDir) + "/tests/deploy/k8s/validate.js", path},
                   dir_);
  }

  testing::TempDir temp_{"outreach_k8s_"};
  const std::string dir_ = temp_.path();
};

TEST_F(KubernetesTest, EveryVariantRendersWithTheObjectsItNeeds) {
  for (const std::string& variant : kVariants) {
    const ToolRun run = Render(variant);
    if (variant == "single-pod") {
      EXPECT_THAT(run.output, HasSubstr("kind: Pod\n"));
      continue;
    }
    for (const char* kind : {"kind: StatefulSet", "kind: Service", "kind: PodDisruptionBudget",
                             "kind: NetworkPolicy", "kind: CronJob", "kind: ConfigMap"}) {
      EXPECT_THAT(run.output, HasSubstr(kind)) << variant;
    }
    EXPECT_THAT(run.output, HasSubstr("clusterIP: None")) << variant;
    EXPECT_THAT(run.output, HasSubstr("service: outreach.v1.TaskService")) << variant;
    EXPECT_THAT(run.output, HasSubstr("readOnlyRootFilesystem: true")) << variant;
    EXPECT_THAT(run.output, HasSubstr("type: RuntimeDefault")) << variant;
  }
  // Each shard's objects are its own: names, selectors and the backup job's target.
  const std::string a = Render("overlays/shard-a").output;
  EXPECT_THAT(a, HasSubstr("name: outreachd-a\n"));
  EXPECT_THAT(a, HasSubstr("app.kubernetes.io/instance: shard-a"));
  EXPECT_THAT(a, HasSubstr("OUTREACH_BACKUP_SERVER: outreachd-a-0.outreachd-a:50051"));
  EXPECT_THAT(Render("overlays/shard-c").output, HasSubstr("serviceName: outreachd-c\n"));
}

TEST_F(KubernetesTest, YamllintPassesOnTheSources) {
  const std::vector<std::string> args = {
      "yamllint", "--strict", "-c", std::string(kSourceDir) + "/tests/deploy/k8s/yamllint.yaml",
      kK8s};
  const ToolRun run = RunTool(args, dir_);
  EXPECT_EQ(run.exit_code, 0) << run.Describe(args);
  EXPECT_EQ(run.output, "") << run.Describe(args);
}

TEST_F(KubernetesTest, EveryRenderedObjectValidatesWithUnknownFieldsRejected) {
  int objects = 0;
  for (const std::string& variant : kVariants) {
    const std::string path = Write("render.yaml", Render(variant).output);
    const ToolRun run = Validate(path);
    EXPECT_EQ(run.exit_code, 0) << variant << "\n" << run.output;
    EXPECT_THAT(run.output, HasSubstr(" valid, 0 invalid")) << variant;
    objects += static_cast<int>(std::count(run.output.begin(), run.output.end(), '\n')) - 1;
  }
  std::printf("validated %d objects in %zu variants\n", objects, kVariants.size());
}

TEST_F(KubernetesTest, TheValidatorRejectsAnUnknownFieldAndABadType) {
  const std::string render = Render("overlays/shard-a").output;
  ToolRun run = Validate(Write(
      "typo.yaml", absl::StrReplaceAll(render, {{"readOnlyRootFilesystem: true",
                                                  "readOnlyRootFileSystem: true"}})));
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("securityContext.readOnlyRootFileSystem: unknown field"));
  run = Validate(
      Write("type.yaml", absl::StrReplaceAll(render, {{"replicas: 1", "replicas: one"}})));
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("replicas must be integer"));
}

// ---- The single-pod variant under podman kube play --------------------------------------------

constexpr char kKubePlayToken[] = "kube-play-admin-token-0123456789";

TEST_F(KubernetesTest, TheSinglePodVariantServesUnderPodmanKubePlayAndIsTornDown) {
  const std::string image = ImageUnderTest();
  if (image.empty()) GTEST_SKIP() << "OUTREACH_IMAGE is not set: `make test-deploy` sets it";
  ConfigurePodman(dir_);
  const int port = e2e::FreePort();
  const std::string suffix = absl::StrCat(getpid());
  // The render, on a free loopback port, with names of its own, and the principals ConfigMap
  // the README has the operator create.
  const std::string principals = Write("principals", absl::StrCat("admin-1 admin ",
                                                                  Sha256Hex(kKubePlayToken), "\n"));
  const std::vector<std::string> create = {
      "kubectl", "create", "configmap", "outreachd-principals",
      "--from-file=principals=" + principals, "--dry-run=client", "-o", "yaml"};
  const ToolRun config_map = RunTool(create, dir_);
  ASSERT_EQ(config_map.exit_code, 0) << config_map.Describe(create);
  const std::string pod = "outreachd-kube-" + suffix;
  const std::string volume = "outreachd-kube-data-" + suffix;
  const std::string yaml = Write(
      "play.yaml",
      absl::StrCat(absl::StrReplaceAll(Render("single-pod").output,
                                       {{"hostPort: 50051", absl::StrCat("hostPort: ", port)},
                                        {"\n  name: outreachd\n", "\n  name: " + pod + "\n"},
                                        {"claimName: outreachd-data", "claimName: " + volume},
                                        {"localhost/outreach:latest", image}}),
                   "---\n", config_map.output));
  const std::vector<std::string> play = {"podman", "kube", "play", yaml};
  const ToolRun played = RunTool(play, dir_);
  const bool serving = played.exit_code == 0 &&
                       WaitServing(absl::StrCat("127.0.0.1:", port), "outreach.v1.TaskService",
                                   absl::Seconds(30));
  const std::string logs = RunTool({"podman", "logs", pod + "-outreachd"}, dir_).output;
  const std::vector<std::string> down = {"podman", "kube", "down", yaml};
  const ToolRun torn = RunTool(down, dir_);
  RunTool({"podman", "volume", "rm", "-f", volume}, dir_);
  ASSERT_EQ(played.exit_code, 0) << played.Describe(play);
  EXPECT_TRUE(serving) << logs;
  EXPECT_EQ(torn.exit_code, 0) << torn.Describe(down);
  const ToolRun exists = RunTool({"podman", "pod", "exists", pod}, dir_);
  EXPECT_EQ(exists.exit_code, 1) << "pod " << pod << " is still there";
}

}  // namespace
}  // namespace outreach::deploy
