// "requests": actor '\0' request_id -> RequestRecord (store/keys.h): the idempotency keys,
// the latest event of each request. Event-derived: its fold keeps its own map of request ids.
// Stateless; thread-safe.
#pragma once

#include "store/projection.h"

namespace outreach::store {

const Projection& RequestsProjection();

}  // namespace outreach::store
