// The projections the store keeps: the one list the live write, the rebuild, VerifyProjections
// and DumpProjections all go through (store/projection.h). Immutable; thread-safe.
#pragma once

#include <vector>

#include "absl/types/span.h"
#include "store/keys.h"
#include "store/projection.h"

namespace outreach::store {

using ProjectionSet = absl::Span<const Projection* const>;

// Every registered projection, in the order of their families' numbers (keys::Cf): streams,
// tasks, worklist, expiry, requests.
ProjectionSet RegisteredProjections();

// The families of `projections`, in their order, each projection's in its families() order.
std::vector<keys::Cf> FamiliesOf(ProjectionSet projections);

// FamiliesOf(RegisteredProjections()): the families rebuilt, verified and dumped.
absl::Span<const keys::Cf> ProjectionFamilies();

}  // namespace outreach::store
