// wf/observer.hpp - hooks into what a runtime does, for logs and metrics.
//
//     auto log = std::make_shared<wf::json_logger>();          // wf/log.hpp
//     auto metrics = std::make_shared<wf::metrics>();          // wf/metrics.hpp
//     wf::runtime rt(io.get_executor(), store, {.observer = wf::observe_all({log, metrics})});
//
// A runtime calls its observer (`runtime_options::observer`) on its executor,
// as things happen: workflows created, resumed and finished; attempts started
// and ended (with the error and when the next one is due); each call of a
// branch's action or handler, with its latency and how it ended; each
// journal write with its latency; leases renewed, lost and taken over.
// Hooks must be quick and must not throw (an exception from one is
// swallowed); they must not call back into the runtime. Their arguments are
// views valid during the call only. Without an observer the runtime builds
// none of them.
//
// The default implementation of every hook does nothing: override what you need.
#ifndef WF_OBSERVER_HPP
#define WF_OBSERVER_HPP

#include <wf/journal.hpp>
#include <wf/workflow.hpp>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace wf {

/// Which workflow an event is about.
struct workflow_ref {
  std::string_view gid;
  std::string_view name;
};

/// How an attempt (one run of a workflow's code over its journal) ended.
enum class attempt_end : std::uint8_t {
  finished,    ///< succeeded or rolled back
  transient,   ///< a transient error: retried after a backoff
  stuck,       ///< a bug: the workflow stopped as stuck
  lease_lost,  ///< another runner took the workflow over
  stopped,     ///< stopped by `runtime::shutdown`
};

/// How one call of an action or handler ended.
enum class call_end : std::uint8_t {
  ok,         ///< succeeded
  failure,    ///< a business failure (`wf::failure`, HTTP 409, gRPC ABORTED)
  ongoing,    ///< not done yet (`wf::ongoing`, HTTP 425, gRPC FAILED_PRECONDITION)
  transient,  ///< any other transient error
  bug,        ///< an error classified as a bug
};

std::string_view to_string(attempt_end e) noexcept;
std::string_view to_string(call_end e) noexcept;

class observer {
 public:
  virtual ~observer() = default;

  /// A workflow was durably created by this runtime (`execute` of a new gid).
  virtual void workflow_created(const workflow_ref&) {}
  /// This runtime claimed an existing workflow to run it (`recover`, the
  /// poller, `execute` of an unfinished gid). `previous_owner` is the
  /// executor id that held it last ("" if none: enqueued or released);
  /// `takeover`: it was another runner's.
  virtual void workflow_resumed(const workflow_ref&, std::string_view previous_owner, bool takeover) {
    (void)previous_owner, (void)takeover;
  }
  /// A workflow ended here: succeeded, failed (rolled back) or stuck (a bug);
  /// `detail` is the result bytes, the reason, or why it is stuck.
  virtual void workflow_finished(const workflow_ref&, workflow_status, std::string_view detail) { (void)detail; }

  /// An attempt starts: `attempt` counts from 1 (the attempts already
  /// counted in the store + 1); `closing`: the workflow ran out of attempts
  /// or time and this attempt rolls it back.
  virtual void attempt_started(const workflow_ref&, std::uint32_t attempt, bool closing) {
    (void)attempt, (void)closing;
  }
  /// An attempt ended. For `transient`: the error, and when the next attempt is due.
  virtual void attempt_ended(const workflow_ref&, std::uint32_t attempt, attempt_end how, std::string_view error,
                             std::optional<wall_clock::time_point> next_attempt) {
    (void)attempt, (void)how, (void)error, (void)next_attempt;
  }

  /// A branch's action (`call.op == "action"`) or handler (rollback, commit,
  /// finish) is called for real (not replayed).
  virtual void call_started(const workflow_ref&, const branch_context& call) { (void)call; }
  /// ... and ended, after `latency`; `error` is empty for `ok`.
  virtual void call_ended(const workflow_ref&, const branch_context& call, call_end how,
                          std::chrono::nanoseconds latency, std::string_view error) {
    (void)call, (void)how, (void)latency, (void)error;
  }

  /// Journal records (and/or the workflow's status) were written durably.
  virtual void journal_written(const workflow_ref&, std::size_t records, std::chrono::nanoseconds latency) {
    (void)records, (void)latency;
  }

  /// The leases of `count` running workflows were renewed (`lost` of them were lost).
  virtual void leases_renewed(std::size_t count, std::size_t lost) { (void)count, (void)lost; }
  /// This runtime lost its claim on a running workflow: it stops at once.
  virtual void lease_lost(const workflow_ref&) {}

  /// PostgreSQL store only (`postgres_options::observer`), called from the
  /// store's writer thread, not the runtime's executor: one group commit of
  /// `writes` journal writes and creations took `latency`.
  virtual void group_committed(std::size_t writes, std::chrono::nanoseconds latency) { (void)writes, (void)latency; }
};

/// One observer that calls each of `all` in turn (null ones are skipped).
std::shared_ptr<observer> observe_all(std::vector<std::shared_ptr<observer>> all);

}  // namespace wf

#endif  // WF_OBSERVER_HPP
