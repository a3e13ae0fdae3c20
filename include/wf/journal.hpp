// wf/journal.hpp - what a store keeps: a workflow's state and its journal.
//
// A journal is the ordered list of records of one workflow. Its shape is
//
//     forward records (branch | step | value)...   -- in the order the code made them
//     [ decision ]                                  -- commit (result) or rollback (reason)
//     [ handler records (commit | rollback | finish) ... ]
//
// Records are only ever appended; a record, once durable, is never changed.
// `seq` numbers the records 1, 2, 3... without gaps.
#ifndef WF_JOURNAL_HPP
#define WF_JOURNAL_HPP

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wf {

using wall_clock = std::chrono::system_clock;

enum class record_kind : std::uint8_t {
  branch = 1,    ///< a branch action's outcome (result bytes, or failure reason)
  step = 2,      ///< a local step's outcome (a branch with no handlers)
  value = 3,     ///< a recorded value: now(), uuid(), random(), record()
  decision = 4,  ///< the end of the forward phase: commit (payload = result) or rollback (payload = reason)
  commit = 5,    ///< a branch's on_commit handler has run
  rollback = 6,  ///< a branch's on_rollback handler has run
  finish = 7,    ///< a branch's on_finish handler has run
  // Reserved for later record kinds (durable timers, messages to a workflow,
  // cancellation, child workflows); a store must keep unknown kinds as they are.
};

/// The name of a kind, as used in error messages and docs ("branch", ...).
std::string_view to_string(record_kind k) noexcept;

struct journal_record {
  std::uint32_t seq = 0;     ///< position in the journal, from 1
  record_kind kind = record_kind::branch;
  std::string name;          ///< branch/step/value name; for handler records, the branch's name
  std::uint32_t branch = 0;  ///< branch id (branch, step, handler records); for a rollback decision,
                             ///< the branch whose outcome was unknown when it was taken (0: none)
  bool failed = false;       ///< branch/step: business failure; decision: rollback
  std::string payload;       ///< result bytes, failure reason or value bytes

  friend bool operator==(const journal_record&, const journal_record&) = default;
};

enum class workflow_status : std::uint8_t {
  running = 0,    ///< not finished: being run, or waiting for its next attempt
  succeeded = 1,  ///< committed; `result` holds the result bytes
  failed = 2,     ///< rolled back; `result` holds the reason
  stuck = 3,      ///< stopped by a bug (non-determinism, corrupt journal); `result` says why
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
  // under and the store refuses writes from an older epoch.
  std::uint64_t epoch = 0;
  std::string owner;
  wall_clock::time_point lease_expires{};

  // Scheduling and diagnostics.
  std::uint32_t attempts = 0;  ///< runs that ended in a transient error so far
  std::string last_error;      ///< the last transient error, empty if none
  wall_clock::time_point next_attempt_at{};
  std::optional<wall_clock::time_point> deadline;  ///< after this, a transient error rolls the workflow back

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
