// One run of a workflow's code over its journal: the shell around the
// engine (engine.hpp). It runs the code; runs each operation's action in
// the coroutine that awaits it (the workflow's, or one wf::when_all started:
// several may run at once), so that cancelling the workflow's coroutine (a
// stop) reaches every running action; journals the outcomes through one append queue
// (one write in flight at a time; outcomes that arrive meanwhile go together
// in the next write); resumes the code once an outcome is durable; waits
// for every action and write to settle before it decides; then runs the
// commit or rollback handlers.
#ifndef WF_SRC_RUNTIME_ATTEMPT_HPP
#define WF_SRC_RUNTIME_ATTEMPT_HPP

#include "engine.hpp"

#include <wf/clock.hpp>
#include <wf/errors.hpp>
#include <wf/observer.hpp>
#include <wf/runtime.hpp>
#include <wf/store.hpp>
#include <wf/workflow.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/post.hpp>

#include <memory>
#include <exception>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace wf::detail {

struct registration {
  raw_workflow fn;
  workflow_options options;
};

/// What an attempt uses of its runtime.
struct attempt_env {
  boost::asio::any_io_executor executor;
  store& st;
  wf::clock& clock;
  const std::function<error_kind(const std::exception_ptr&)>& classify;
  std::mt19937_64& rng;
  wf::observer* obs = nullptr;
};

/// Calls `hook(*obs)` if there is an observer; what it throws is swallowed.
template <class Hook>
void notify(wf::observer* obs, Hook&& hook) noexcept {
  if (!obs) return;
  try {
    hook(*obs);
  } catch (...) {
  }
}

/// What an error means for an observer's call_ended.
call_end call_end_of(error_kind kind, const std::exception_ptr& e);

/// What is stored of a workflow's progress: `status` and `result`, with the
/// attempts, last error and next attempt time `s` has.
inline progress progress_of(const workflow_state& s, workflow_status status, std::string result) {
  return progress{status, std::move(result), s.attempts, s.last_error, s.next_attempt_at};
}

struct attempt_result {
  enum class kind {
    finished,    ///< succeeded or rolled back: `out`
    transient,   ///< try again later: `error`, `ongoing`
    stuck,       ///< a bug: `error` is the reason, `exception` what to tell callers
    lease_lost,  ///< another runner owns the workflow now: `exception`
    stopped,     ///< stopped from outside (shutdown): nothing more was written
  };
  kind what = kind::transient;
  outcome out;
  std::string error;
  bool ongoing = false;
  std::exception_ptr exception;
};

/// One pending completion handler, or none. (Boost 1.81's
/// any_completion_handler cannot be move-assigned - its assignment calls
/// its converting constructor with itself, forever - so it is only ever
/// constructed in place here, and moved out.)
template <class Signature>
class one_handler {
 public:
  template <class Handler>
  void set(Handler&& h) {
    h_.reset();
    h_.emplace(std::forward<Handler>(h));
  }
  explicit operator bool() const noexcept { return h_.has_value(); }
  boost::asio::any_completion_handler<Signature> take() {
    boost::asio::any_completion_handler<Signature> h(std::move(*h_));
    h_.reset();
    return h;
  }
  void reset() noexcept { h_.reset(); }

 private:
  std::optional<boost::asio::any_completion_handler<Signature>> h_;
};

/// Runs `h(args...)` later, on `ex`. (A lambda owns the handler: Boost
/// 1.81's any_completion_handler cannot be handed to post() or append() as
/// it is, its converting constructor takes itself.)
template <class... Args>
void post_completion(const boost::asio::any_io_executor& ex,
                     boost::asio::any_completion_handler<void(Args...)> h, Args... args) {
  boost::asio::post(ex, [h = std::move(h), ... a = std::move(args)]() mutable { std::move(h)(std::move(a)...); });
}

/// A random version-4 UUID in its text form.
std::string random_uuid(std::mt19937_64& rng);

/// Commits one write and returns its status.
boost::asio::awaitable<write_status> commit_one(store& s, write w);

/// The text of an exception, for messages.
std::string message_of(const std::exception_ptr& e);

class attempt {
 public:
  /// In closing mode (`closing_reason` set: the workflow ran out of attempts
  /// or time), the run only rebuilds the handlers and decides a rollback with
  /// that reason; nothing new is called. Throws corrupt_journal_error.
  attempt(attempt_env env, const registration& reg, const workflow_state& state, std::vector<journal_record> journal,
          std::optional<std::string> closing_reason);
  attempt(const attempt&) = delete;
  attempt& operator=(const attempt&) = delete;

  boost::asio::awaitable<attempt_result> run();

  /// Why an attempt is stopped from outside.
  enum class stop_cause { lease_lost, shutdown };
  /// Stops the run at once: the code's waits for outcomes end, nothing new
  /// starts, and (lease lost) nothing more is written. The actions and the
  /// handler running are cancelled by the caller, through the cancellation
  /// of the coroutine the attempt runs in (wf::when_all passes it on to the
  /// coroutines it started). On the attempt's executor.
  void stop(stop_cause cause);

  // ---- for wf::workflow

  const std::string& gid() const noexcept { return state_.gid; }
  const std::string& name() const noexcept { return state_.name; }
  bool replaying() const noexcept { return engine_.replaying(); }
  std::mt19937_64& rng() noexcept { return env_.rng; }
  wf::clock& clock() noexcept { return env_.clock; }
  boost::asio::awaitable<std::string> run_branch(record_kind kind, branch_spec spec, raw_action action);
  boost::asio::awaitable<std::string> record_value(std::string name, std::function<std::string()> fn);
  /// API misuse found by the workflow object: the workflow stops as stuck. Throws.
  [[noreturn]] void misuse(const std::string& message);

 private:
  // What the attempt keeps of an operation (the engine keeps the rest):
  // small, since a workflow parked in a branch holds one per operation.
  struct op_slot {
    std::uint32_t id = 0;
    record_kind kind = record_kind::branch;
    bool resolved = false;
    bool running = false;  // its action is running
    std::uint8_t branch_size = 0;
    char branch_text[11] = {};  // "01": the branch id in text (none for a value)
    std::string name;
    std::unique_ptr<branch_handlers> handlers;  // only for a branch that has any
    std::exception_ptr error;
    std::string value;
    one_handler<void()> waiter;  // the coroutine waiting for a write another one makes

    std::string_view branch_id() const noexcept { return {branch_text, branch_size}; }
    const handler& handler_for(record_kind k) const noexcept;
  };
  struct queued {
    journal_record record;
    std::uint32_t op;
  };
  enum class ending { returned, business, transient, halted, stopped, bug };
  // How the workflow's code ended: its result, or the error's message.
  struct code_end {
    ending how = ending::transient;
    std::string value;
    bool ongoing = false;  // a transient error that says the call is still going on
  };

  // Throws std::logic_error if called from a thread not running the runtime's executor.
  void check_thread() const;
  // Throws what stops this run from going on, if anything does.
  void check_can_go_on() const;
  [[noreturn]] void stop_with_bug(std::exception_ptr error, std::string reason);
  // Throws std::invalid_argument (a bug: the workflow stops) for a name that is empty or cannot be stored.
  void check_name(record_kind kind, const std::string& name);
  void note_bug(std::exception_ptr error, std::string reason);
  op_slot& start_op(record_kind kind, branch_spec& spec, engine::start_result& started);
  // An action ended: journals its outcome (true: the caller must write,
  // flush()), or settles it as unknown.
  bool settle_action(op_slot& slot, std::exception_ptr error, std::string payload);
  void settle_unknown(op_slot& slot, std::exception_ptr error);
  void resolve(op_slot& slot, std::exception_ptr error, std::string value);
  // Waits for the operation's record to be journaled by the write another
  // coroutine is making (or for the operation to be settled otherwise).
  boost::asio::awaitable<void> resolved(op_slot& slot);
  // The resolved operation's outcome (or throws its error).
  std::string take_outcome(op_slot& slot);
  // Queues a record; true if no write is in progress: the caller writes (flush()).
  bool enqueue(journal_record record, std::uint32_t op);
  boost::asio::awaitable<void> flush();
  bool quiet() const noexcept;
  void notify_quiet();
  boost::asio::awaitable<void> settle();
  // True, and the run stops as stuck, if a payload of `size` bytes is over
  // the limit; `what()` names it (made only then).
  template <class What>
  bool too_large(std::size_t size, What&& what) {
    if (size <= max_payload_bytes) return false;
    note_too_large(size, what());
    return true;
  }
  void note_too_large(std::size_t size, const std::string& what);

  code_end code_end_of(const std::exception_ptr& e);
  boost::asio::awaitable<attempt_result> after_code(code_end end);
  boost::asio::awaitable<attempt_result> conclude(ending how, std::string value, bool ongoing_answer);
  boost::asio::awaitable<attempt_result> finish(journal_record decision, bool record_decision);
  // Appends records (and progress) durably, from the handler phase; throws
  // lease_lost_error if refused, the store's error if it fails.
  boost::asio::awaitable<void> append(std::vector<journal_record> records, std::optional<progress> p);
  attempt_result stop_result() const;
  attempt_result transient_result(std::string error, bool ongoing) const;
  op_slot* slot(std::uint32_t op) noexcept { return op == 0 || op > ops_.size() ? nullptr : ops_[op - 1].get(); }
  workflow_ref ref() const noexcept { return {state_.gid, state_.name}; }

  attempt_env env_;
  const registration& reg_;
  const workflow_state& state_;  // the driver's, which outlives this attempt
  engine engine_;
  std::optional<std::string> closing_reason_;
  std::vector<std::unique_ptr<op_slot>> ops_;  // by operation id - 1 (stable addresses)

  // The append queue.
  std::vector<queued> queue_;
  std::vector<queued> spare_;  // the last batch's, for its capacity
  bool writing_ = false;
  std::size_t actions_running_ = 0;
  one_handler<void()> quiet_waiter_;

  // What stops the run. `stop_` (lease lost, shutdown) and `bug_`
  // (non-determinism, misuse, a bug error) end it; `transient_` is a
  // transient error of an action: its outcome is unknown, so the code must
  // not go past it; `broken_` is a store error during a write: the journal's
  // end is unknown, so nothing more may be written in this run.
  std::exception_ptr stop_;
  std::optional<stop_cause> stop_cause_;
  std::exception_ptr bug_;
  std::string bug_reason_;
  std::exception_ptr transient_;
  bool transient_ongoing_ = false;
  std::exception_ptr broken_;
  bool halted_ = false;
};

}  // namespace wf::detail

#endif  // WF_SRC_RUNTIME_ATTEMPT_HPP
