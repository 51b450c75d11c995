#include "store/projections/registry.h"

#include "store/projections/expiry.h"
#include "store/projections/outreach_stats.h"
#include "store/projections/patients.h"
#include "store/projections/requests.h"
#include "store/projections/streams.h"
#include "store/projections/tasks.h"
#include "store/projections/worklist.h"

namespace outreach::store {

ProjectionSet RegisteredProjections() {
  // A new projection: one line here, in the order of its families.
  static const Projection* const kProjections[] = {
      &StreamsProjection(), &TasksProjection(), &WorklistProjection(), &ExpiryProjection(),
      &RequestsProjection(), &PatientsProjection(), &OutreachStatsProjection(),
  };
  return kProjections;
}

std::vector<keys::Cf> FamiliesOf(ProjectionSet projections) {
  std::vector<keys::Cf> families;
  for (const Projection* projection : projections) {
    for (const FamilySpec& family : projection->families()) families.push_back(family.id);
  }
  return families;
}

absl::Span<const keys::Cf> ProjectionFamilies() {
  static const std::vector<keys::Cf>* const kFamilies =
      new std::vector<keys::Cf>(FamiliesOf(RegisteredProjections()));
  return *kFamilies;
}

}  // namespace outreach::store
