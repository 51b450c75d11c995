// "streams": task_id '\0' version -> position (store/keys.h), one row per event: where each
// version of each task is in the log.
// Stateless; thread-safe.
#pragma once

#include "store/projection.h"

namespace outreach::store {

const Projection& StreamsProjection();

}  // namespace outreach::store
