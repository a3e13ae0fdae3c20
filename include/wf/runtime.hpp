// wf/runtime.hpp - registering workflows and running them.
//
//     asio::io_context io;
//     auto store = std::make_shared<wf::memory_store>();
//     wf::runtime rt(io.get_executor(), store);
//     rt.register_workflow("transfer", transfer);           // awaitable<Out>(wf::workflow&, In)
//     asio::co_spawn(io, [&]() -> asio::awaitable<void> {
//       wf::outcome o = co_await rt.execute("transfer", "gid-1", transfer_request{...});
//     }, asio::detached);
//     io.run();
//
// Threading: a runtime and everything it runs live on one executor (use a
// strand if the io_context is run by several threads). Call its members from
// that executor. Many thousands of workflows may run at once; a workflow
// waiting on a branch costs its coroutine frames, not a thread.
//
// Stopping: a service calls `co_await rt.shutdown()` on SIGTERM: the poller
// stops, new work is refused, running workflows stop at once (their actions
// cancelled, the journal writes in flight finished) and are released to the
// store, so that another runner takes them over without waiting for a lease
// to expire. Without it, the workflows a runtime drives keep its internals
// alive until they finish or their io_context is destroyed; destroying the
// runtime object does not stop them. The runtime, the store and the
// io_context may be destroyed in any order (what a process crash does is
// always safe: the store keeps the journal, and the next runtime with the
// same executor id resumes from it).
#ifndef WF_RUNTIME_HPP
#define WF_RUNTIME_HPP

#include <wf/clock.hpp>
#include <wf/codec.hpp>
#include <wf/errors.hpp>
#include <wf/journal.hpp>
#include <wf/observer.hpp>
#include <wf/retry_policy.hpp>
#include <wf/store.hpp>
#include <wf/workflow.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

namespace wf {

/// How one registered workflow behaves.
struct workflow_options {
  retry_policy retry;
  /// Timeout-to-fail: if the forward phase has not finished this long after
  /// the workflow was created, it rolls back at its next transient error (or
  /// at its next attempt).
  std::optional<std::chrono::milliseconds> timeout;
  /// Compensate branches whose own action failed (a branch may override it).
  bool compensate_failed_branch = false;
};

struct runtime_options {
  /// Identifies this runner as the owner of the workflows it runs. A process
  /// that restarts with the same id resumes its own workflows at once; others
  /// wait for its leases to expire. Empty: a random id.
  std::string executor_id;
  /// How long a claim on a workflow lasts without renewal. The runtime renews
  /// the leases of the workflows it runs every third of this.
  std::chrono::milliseconds lease_duration{std::chrono::seconds(30)};
  /// How often the poller started by `start()` looks for workflows to take
  /// over: enqueued ones, and those of runners whose lease expired. A store
  /// that announces new work (Postgres: LISTEN/NOTIFY) wakes it earlier.
  std::chrono::milliseconds poll_interval{std::chrono::seconds(1)};
  /// At most this many workflows claimed per poll.
  std::size_t claim_batch = 128;
  /// `recover()` claims in pages of this many workflows (one statement, and
  /// one query for their journals, per page). Larger pages mean fewer round
  /// trips while the workflows of the first pages already run.
  std::size_t recovery_batch = 1024;
  /// If not zero, the poller purges finished workflows (and their journals)
  /// last updated longer ago than this, at most once a minute.
  std::chrono::seconds retention{0};
  /// Where the runtime reads the time and waits between attempts (tests
  /// pass a wf::testing::manual_clock). Null: the system clock.
  std::shared_ptr<wf::clock> clock{};
  /// How errors are classified (business, transient, bug). Null: `wf::classify`.
  std::function<error_kind(const std::exception_ptr&)> classify{};
  /// Told what the runtime does (wf/observer.hpp; wf::json_logger, wf::metrics). Null: none.
  std::shared_ptr<wf::observer> observer{};
};

/// The result of a finished workflow.
struct outcome {
  workflow_status status = workflow_status::succeeded;  ///< succeeded or failed
  std::string result;  ///< the result bytes (succeeded)
  std::string reason;  ///< the business failure reason (failed)

  bool succeeded() const noexcept { return status == workflow_status::succeeded; }
  /// The result, decoded with `wf::codec<T>`.
  template <class T>
  T result_as() const {
    return codec<T>::decode(result);
  }
};

/// A new random workflow id (a version-4 UUID).
std::string new_gid();

namespace detail {
using raw_workflow = std::function<boost::asio::awaitable<std::string>(workflow&, std::string)>;

// Empty (no `input`) for what is not a workflow, so that register_workflow
// can say so: a generic lambda has no single operator() to take the address of.
template <class F, class = void>
struct workflow_signature {};
template <class F>
struct workflow_signature<F, std::void_t<decltype(&F::operator())>> : workflow_signature<decltype(&F::operator())> {};
template <class C, class Out, class E, class In>
struct workflow_signature<boost::asio::awaitable<Out, E> (C::*)(workflow&, In) const> {
  using input = std::decay_t<In>;
  using output = Out;
};
template <class C, class Out, class E, class In>
struct workflow_signature<boost::asio::awaitable<Out, E> (C::*)(workflow&, In)>
    : workflow_signature<boost::asio::awaitable<Out, E> (C::*)(workflow&, In) const> {};
template <class Out, class E, class In>
struct workflow_signature<boost::asio::awaitable<Out, E> (*)(workflow&, In)> {
  using input = std::decay_t<In>;
  using output = Out;
};
template <class F>
concept registrable_workflow = requires { typename workflow_signature<F>::input; };

// Undecodable input is the caller's mistake, not a transient error: the
// workflow fails (business failure) rather than retrying forever.
template <class In>
In decode_input(const std::string& bytes) {
  try {
    return codec<In>::decode(bytes);
  } catch (const decode_error& e) {
    throw failure(std::string("invalid input: ") + e.what());
  }
}
}  // namespace detail

class runtime {
 public:
  /// A runtime whose workflows run on `executor` and are journaled in `store`.
  runtime(boost::asio::any_io_executor executor, std::shared_ptr<store> store, runtime_options options = {});
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// Registers `fn`, a function or lambda `asio::awaitable<Out>(wf::workflow&, In)`,
  /// under `name`. `In` and `Out` are any types with a `wf::codec`.
  /// Throws `duplicate_workflow_error` if the name is taken.
  template <class F>
  void register_workflow(std::string name, F fn, workflow_options options = {});

  /// Runs the workflow `name` with id `gid`, or returns the outcome of the one
  /// that exists:
  ///  * new gid: the workflow is durably recorded, then run to its end;
  ///  * existing gid, same name and input: its stored outcome, or (running)
  ///    waits for it, resuming it here if no other runner holds it;
  ///  * existing gid, different name or input: throws `conflict_error`.
  /// Transient errors are retried inside (with backoff); the awaitable
  /// completes when the workflow has succeeded or been rolled back. Throws
  /// `unknown_workflow_error`, `nondeterminism_error` / `workflow_stuck_error`
  /// (bugs), `lease_lost_error`, or `std::invalid_argument` for a bad gid.
  /// Cancelling the caller does not stop the workflow.
  boost::asio::awaitable<outcome> execute(std::string name, std::string gid, std::string input);

  /// `execute` with a typed input (encoded with `wf::codec<In>`).
  template <class In>
    requires(!std::is_convertible_v<In, std::string>)
  boost::asio::awaitable<outcome> execute(std::string name, std::string gid, const In& input) {
    return execute(std::move(name), std::move(gid), codec<In>::encode(input));
  }

  /// `execute` for callers outside coroutines: completes `token` with
  /// `(std::exception_ptr, wf::outcome)`, e.g. `asio::use_future` or a callback.
  template <class Token>
  auto async_execute(std::string name, std::string gid, std::string input, Token&& token) {
    return boost::asio::co_spawn(get_executor(), execute(std::move(name), std::move(gid), std::move(input)),
                                 std::forward<Token>(token));
  }

  /// Resumes the unfinished workflows this runner may run (its own, and those
  /// with no owner or whose lease expired): what a service calls at start-up.
  /// It claims them in pages of `recovery_batch`; `execute` calls made
  /// meanwhile wait for it, so that none is claimed twice. Returns how many
  /// were resumed; it does not wait for them to finish.
  boost::asio::awaitable<std::size_t> recover();

  /// Durably records a workflow for any runner to run (the first poller to
  /// claim it), and completes without running it. Same gid rules as
  /// `execute`: an existing gid with the same name and input is a no-op, a
  /// different one a `conflict_error`.
  boost::asio::awaitable<void> enqueue(std::string name, std::string gid, std::string input);

  /// Starts the poller: every `poll_interval` (or when the store announces
  /// new work) it claims due workflows that are enqueued or whose runner's
  /// lease expired, and runs them; it also applies `retention`. Until `stop`,
  /// the poller keeps the io_context busy.
  void start();
  /// Stops the poller; workflows already running go on to their end.
  void stop();

  /// Stops this runtime gracefully (what a service calls on SIGTERM): stops
  /// the poller and refuses new work (`execute`, `enqueue` and `recover`
  /// throw `wf::shutdown_error`); stops every workflow running here at once
  /// (actions and handlers are cancelled, waits end, nothing new starts; a
  /// journal write in flight finishes or fails); waits up to `grace` for them
  /// to stop; then releases them in the store, so that another runner may
  /// take them over at once. Callers waiting in `execute` for a workflow that
  /// was stopped get `wf::shutdown_error`. An action that ignores cancellation
  /// and outlives `grace` is left to end on its own: its outcome is not
  /// journaled (the release fenced it).
  boost::asio::awaitable<void> shutdown(std::chrono::milliseconds grace = std::chrono::seconds(10));

  /// Deletes finished workflows last updated more than `older_than` ago, with
  /// their journals, in batches of 1,000. Returns how many. Unfinished
  /// workflows are never purged.
  boost::asio::awaitable<std::size_t> purge(std::chrono::seconds older_than);

  /// Makes a `stuck` workflow (a bug: non-determinism, a bad URL...) run again
  /// from its journal, once the code or configuration is fixed: any runner's
  /// poller (or `recover`, or `execute` for that gid) picks it up. False if
  /// `gid` is not stuck.
  boost::asio::awaitable<bool> resume(std::string gid);

  /// The stored state of `gid`: status, attempts, last error, result...
  boost::asio::awaitable<std::optional<workflow_state>> status(std::string gid);

  boost::asio::any_io_executor get_executor() const noexcept;
  const std::string& executor_id() const noexcept;

  struct impl;
  struct active;

 private:
  void add(std::string name, detail::raw_workflow fn, workflow_options options);
  boost::asio::awaitable<std::shared_ptr<active>> join_or_start(std::string name, std::string gid, std::string input);

  std::shared_ptr<impl> impl_;
};

template <class F>
void runtime::register_workflow(std::string name, F fn, workflow_options options) {
  static_assert(detail::registrable_workflow<std::decay_t<F>>,
                "wf: a workflow must be a function or a non-generic lambda taking (wf::workflow&, In) and "
                "returning asio::awaitable<Out>; a generic lambda (an `auto` parameter) cannot be registered: "
                "write its input type, e.g. [](wf::workflow& w, std::string in) -> asio::awaitable<void>");
  if constexpr (detail::registrable_workflow<std::decay_t<F>>) {  // no more errors after the assertion's
    using sig = detail::workflow_signature<std::decay_t<F>>;
    using in = typename sig::input;
    using out = typename sig::output;
    add(std::move(name),
        [f = std::move(fn)](workflow& w, std::string input) mutable -> boost::asio::awaitable<std::string> {
          if constexpr (std::is_void_v<out>) {
            co_await f(w, detail::decode_input<in>(input));
            co_return std::string();
          } else {
            co_return codec<out>::encode(co_await f(w, detail::decode_input<in>(input)));
          }
        },
        std::move(options));
  }
}

}  // namespace wf

#endif  // WF_RUNTIME_HPP
