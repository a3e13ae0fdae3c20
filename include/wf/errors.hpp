// wf/errors.hpp - the error types of wf.
//
// wf keeps three kinds of error apart, and never mixes them up:
//
//  * business failure - `wf::failure`. Thrown by a branch action (or by the
//    workflow code itself) to say "this cannot be done". It is journaled and
//    starts the rollback phase: compensations run in reverse order.
//  * transient error - any other exception escaping a branch action or the
//    workflow code (network, timeout, lost database connection...), and
//    `wf::ongoing` for "not done yet, ask again". Nothing is journaled; the
//    workflow is replayed later with backoff.
//  * bug - `wf::nondeterminism_error`, any `std::logic_error` (a bad URL, a
//    bad argument, misuse of the API), a `wf::decode_error`. Retrying would
//    give the same result: the workflow stops as `stuck` and says why; nothing
//    is rolled back or overwritten. Once the code or configuration is fixed,
//    `runtime::resume` runs it again from its journal.
//
// `wf::classify` is that rule in one place; `runtime_options::classify`
// lets a service replace it (e.g. to call its own exception type a bug).
#ifndef WF_ERRORS_HPP
#define WF_ERRORS_HPP

#include <cstddef>
#include <exception>
#include <stdexcept>
#include <string>

namespace wf {

/// A business failure: the operation was refused for good (HTTP 409, gRPC
/// ABORTED, or thrown by user code). `what()` is the reason, which is
/// journaled and returned to the caller of `runtime::execute`.
class failure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A transient "not done yet" answer (HTTP 425, gRPC FAILED_PRECONDITION).
/// The workflow is retried like after any transient error, but the retry
/// interval does not grow.
class ongoing : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The workflow's code no longer matches its journal: on replay it started an
/// operation whose kind, name or branch id differs from the record of that
/// operation id, or it ended while the journal holds operations it did not
/// reach. The workflow is marked `stuck` and left untouched for a human to
/// look at (`runtime::resume` once the code is fixed).
class nondeterminism_error : public std::logic_error {
 public:
  nondeterminism_error(std::string gid, std::string expected, std::string recorded);

  const std::string& gid() const noexcept { return gid_; }
  /// What the code asked for now, e.g. "branch 'TransIn' (operation 2)".
  const std::string& expected() const noexcept { return expected_; }
  /// What the journal holds for that operation, e.g. "branch 'TransOut' (operation 2)".
  const std::string& recorded() const noexcept { return recorded_; }

 private:
  std::string gid_;
  std::string expected_;
  std::string recorded_;
};

/// Thrown by `runtime::execute` for a workflow that is marked `stuck` (after a
/// non-determinism error or a corrupt journal); `what()` holds the stored reason.
class workflow_stuck_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// `execute` was called with a gid that already exists under a different
/// workflow name or with a different input.
class conflict_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// The largest input, result, failure reason or journaled value wf accepts:
/// 64 MiB. (PostgreSQL's own limit for one value is 1 GiB; a journal is read
/// whole on every resumption, so wf's is lower.)
inline constexpr std::size_t max_payload_bytes = std::size_t{64} << 20;

/// An input (thrown by `execute` / `enqueue`, nothing stored) or a result,
/// reason or recorded value (the workflow is marked `stuck` with this
/// message) over `max_payload_bytes`.
class payload_too_large_error : public std::length_error {
 public:
  using std::length_error::length_error;
};

/// `execute` named a workflow that is not registered on this runtime.
class unknown_workflow_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// The same workflow name was registered twice on one runtime.
class duplicate_workflow_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

/// This runner lost its claim on the workflow (another runner took it over
/// and bumped the fencing number). The journal write was refused and this
/// runner stopped driving the workflow; the new owner carries on.
class lease_lost_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A value could not be decoded from its recorded bytes (see wf/codec.hpp).
/// A bug: the same bytes will not decode on the next attempt either.
class decode_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The runtime is shutting down (`runtime::shutdown`): it takes no new work,
/// and a workflow it stopped was given back to the store for another runner
/// (or the next start of this one) to carry on.
class shutdown_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The three kinds of error.
enum class error_kind {
  business,   ///< journaled; rolls the workflow back
  transient,  ///< not journaled; retried with backoff
  bug,        ///< not journaled; the workflow stops as `stuck`
};

/// wf's rule: `wf::failure` is a business failure; `wf::ongoing` and any
/// other exception are transient, except `std::logic_error` and its kin
/// (`std::invalid_argument`, `wf::nondeterminism_error`...),
/// `std::bad_function_call` and `wf::decode_error`, which are bugs.
/// `std::bad_alloc` is transient. A null pointer is transient.
error_kind classify(const std::exception_ptr& e) noexcept;

}  // namespace wf

#endif  // WF_ERRORS_HPP
