// "tasks": task_id -> the task's state, keys::EncodeTask (store/keys.h).
// Stateless; thread-safe.
#pragma once

#include "store/projection.h"

namespace outreach::store {

const Projection& TasksProjection();

}  // namespace outreach::store
