// "worklist": one row per scope each task belongs to (store/keys.h), what ListTasks reads.
// Stateless; thread-safe.
#pragma once

#include "store/projection.h"

namespace outreach::store {

const Projection& WorklistProjection();

}  // namespace outreach::store
