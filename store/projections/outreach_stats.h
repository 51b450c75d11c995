// "stats": what ReportService.GetOutreachStats sums (store/outreach_stats.h), per practice, per
// 15-minute period, per (assignee, category): creations and closes in the period they were
// recorded, contacts in the period of their contacted_at under the task's assignee when they
// were logged (StatsBucket, store/keys.h has the key grammar). Beside the buckets, one row per
// task (StatsTask: its practice, category, creation time, assignee and contacts' periods), so
// that a contact logged late (contacted_at before the task's other contacts) can move the
// "previous contacted period" it changes, and a report counts distinct contacted tasks exactly.
//
// Event-derived: the live update and the rebuild's fold run the same code (StatsApplier in the
// .cc) over the same rows, event by event in log order, so the stored bytes are the same either
// way. Stateless; thread-safe.
#pragma once

#include "store/projection.h"

namespace outreach::store {

const Projection& OutreachStatsProjection();

}  // namespace outreach::store
