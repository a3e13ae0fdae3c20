// wf/journal.hpp - what a store keeps: a workflow's state and its journal.
//
// A journal is the list of records of one workflow, only ever appended to:
//
//     operation records (branch | step | value)...  -- what the code started (the command),
//     completion records ...                           and what came of it (the completion)
//     [ decision ]                                  -- commit (result) or rollback (reason)
//     [ handler records (commit | rollback | finish) ... ]
//
// Every operation the workflow's code starts (a branch, a step, a recorded
// value; later timers, messages and child workflows) gets an operation id in
// the order the code starts them: 1, 2, 3... Several may be in flight at once
// (branches in parallel), so their records may come in any order; replay
// matches them to the code by operation id, not by position. An operation
// record holds what was started (kind, name, branch id) and, unless it is
// `pending`, its outcome too: an operation whose action ran while nothing
// else was written costs one record, written once its outcome is known. A
// pending operation record (the command alone) is written when another
// write is made while the operation is still in flight; its outcome follows
// in a completion record with the same operation id.
//
// `seq` numbers the records 1, 2, 3... without gaps; a record, once durable,
// is never changed. See docs/journal-format.md for the stored form and for
// journals written by the first format (before operation ids), which the
// runtime still reads.
#ifndef WF_JOURNAL_HPP
#define WF_JOURNAL_HPP

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wf {

using wall_clock = std::chrono::system_clock;

enum class record_kind : std::uint8_t {
  branch = 1,    ///< a branch's action finished: its outcome (result bytes, or failure reason)
  step = 2,      ///< a local step finished (a branch with no handlers)
  value = 3,     ///< a recorded value: now(), uuid(), random(), record()
  decision = 4,  ///< the end of the forward phase: commit (payload = result) or rollback (payload = reason)
  commit = 5,    ///< a branch's on_commit handler has run
  rollback = 6,  ///< a branch's on_rollback handler has run
  finish = 7,    ///< a branch's on_finish handler has run
  completion = 8,  ///< the outcome of an operation journaled before as `pending`
  // Reserved for later record kinds (durable timers, messages to a workflow,
  // cancellation, child workflows); a store must keep unknown kinds as they are.
};

/// The name of a kind, as used in error messages and docs ("branch", ...).
std::string_view to_string(record_kind k) noexcept;

struct journal_record {
  std::uint32_t seq = 0;     ///< position in the journal, from 1
  record_kind kind = record_kind::branch;
  std::string name{};        ///< branch/step/value name; for handler records, the branch's name
  std::uint32_t branch = 0;  ///< the branch id participants see ("01" = 1) for branch, step and handler records
  bool failed = false;       ///< branch/step/completion: business failure; decision: rollback
  std::string payload{};     ///< result bytes, failure reason or value bytes (empty if pending)
  /// Operation, completion and handler records: the operation's id (1, 2, ... in
  /// the order the code started operations). 0 for a decision, and in the
  /// records of the first journal format, which had no operation ids.
  std::uint32_t op = 0;
  /// Decision: the operations that were in flight when it was taken (their
  /// outcome unknown: a rollback compensates them).
  std::vector<std::uint32_t> in_flight{};
  /// Operation records (branch, step): the outcome is not in this record but
  /// in a later `completion` record of the same operation, if any. A pending
  /// record without a completion is an operation that was started and whose
  /// outcome is unknown.
  bool pending = false;

  friend bool operator==(const journal_record&, const journal_record&) = default;
};

enum class workflow_status : std::uint8_t {
  running = 0,    ///< not finished: being run, or waiting for its next attempt
  succeeded = 1,  ///< committed; `result` holds the result bytes
  failed = 2,     ///< rolled back; `result` holds the reason
  stuck = 3,      ///< stopped by a bug (non-determinism, a bug error, corrupt journal); `result` says why
};

std::string_view to_string(workflow_status s) noexcept;

/// Everything a store keeps about one workflow besides its journal.
struct workflow_state {
  std::string gid;
  std::string name;
  std::string input;
  workflow_status status = workflow_status::running;
  std::string result;  ///< result bytes, or the reason for failed / stuck

  // Ownership: a runner claims a workflow by bumping `epoch` (the fencing
  // number) and holding a lease; every write carries the epoch it was made
  // under and the store refuses writes from an older epoch. An empty owner:
  // no runner holds it (enqueued, or released); any runner may claim it.
  std::uint64_t epoch = 0;
  std::string owner;
  wall_clock::time_point lease_expires{};

  // Scheduling and diagnostics.
  std::uint32_t attempts = 0;  ///< runs that ended in a transient error so far
  std::string last_error;      ///< the last transient error, empty if none
  wall_clock::time_point next_attempt_at{};
  std::optional<wall_clock::time_point> deadline;  ///< after this, the workflow rolls back

  wall_clock::time_point created_at{};
  wall_clock::time_point updated_at{};

  bool finished() const noexcept { return status != workflow_status::running; }
};

/// The mutable part of `workflow_state`, written together with journal records.
struct progress {
  workflow_status status = workflow_status::running;
  std::string result;
  std::uint32_t attempts = 0;
  std::string last_error;
  wall_clock::time_point next_attempt_at{};
};

}  // namespace wf

#endif  // WF_JOURNAL_HPP
