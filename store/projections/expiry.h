// "expiry": expires_at | task_id for each open automatic task (store/keys.h), what the expiry
// scheduler reads.
// Stateless; thread-safe.
#pragma once

#include "store/projection.h"

namespace outreach::store {

const Projection& ExpiryProjection();

}  // namespace outreach::store
