// wf/testing.hpp - crash-test your own workflows (target wf::testing).
//
// `check_crash_recovery` runs a workflow once, uninterrupted, and counts its
// journal writes W. Then, for every N in 1..W, it runs it again from scratch
// with a fault at write N, and again at a lease renewal made while write N
// is in flight, of each of these kinds (crashing_store can also put them at
// claims and at the N-th renewal, for tests of your own):
//  * refuse: the store refuses the write (and every later operation) as if
//    the process had died just before it; the runtime and its io_context are
//    torn down as a killed process would be, and a fresh runtime resumes from
//    the surviving journal (`recover()`, then `execute`). The resuming
//    process's first claim is then made in doubt too (applied, then reported
//    as an error), so that claims are covered;
//  * in_doubt: the store applies the write, then throws, as when a database
//    connection breaks after the commit: the runner cannot know the write
//    landed and must re-read rather than redo; the same process goes on;
//  * takeover: just before the write, the runner's lease is made to lapse
//    and another runner claims the workflow, so that the write is fenced (the
//    first runner stops with lease_lost_error; a run where it does not is a
//    mismatch); that other runner then resumes it.
// At a renewal the same three mean: the renewal is refused (the process
// died while the write was on its way), applied and reported as failed (the
// runner tries again at its next tick), or preceded by a takeover (the
// runner learns it lost the workflow and stops; the write is fenced).
// Each run must end with the same outcome and the same sequence of effects
// on participants - every action and compensation applied exactly once, once
// duplicates are filtered as the barrier would - as the uninterrupted run.
// Recorded values (now(), uuid(), random(), record()) differ from run to run:
// where an effect or the result contains one, it is compared as "the value of
// operation N" (and `crash_test::normalize` may rewrite more).
//
// Participants in such a test are fakes that record what they do in the
// `effect_log` they are given:
//
//     auto result = wf::testing::check_crash_recovery({
//         .workflow = "transfer", .gid = "t-1", .input = R"({"amount":30})",
//         .setup = [](wf::testing::effect_log& log) {
//           auto banks = std::make_shared<fake_banks>(log);   // fresh world per run
//           return [banks](wf::runtime& rt) { register_transfer(rt, banks); };
//         }});
//     REQUIRE(result.ok());  // result.describe() says what diverged
#ifndef WF_TESTING_HPP
#define WF_TESTING_HPP

#include <wf/clock.hpp>
#include <wf/runtime.hpp>
#include <wf/store.hpp>
#include <wf/workflow.hpp>

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace wf::testing {

/// What a fake participant did, in order. `apply` filters requests the way
/// the barrier does for a real participant (see docs/concepts.md):
/// a duplicate (same gid, branch id and op) has no effect; a rollback whose
/// action never ran has no effect and blocks that action if it comes later.
class effect_log {
 public:
  struct effect {
    std::string gid, branch_id, op, what;
    friend bool operator==(const effect&, const effect&) = default;
  };

  /// Whether the participant should apply this call's effect. If so, records
  /// `what` as applied. Thread-safe. Call it only once the participant has
  /// decided to go ahead (after its business checks): a call recorded here and
  /// then refused would, asked again, be taken for a duplicate, as a barrier
  /// row written in a transaction that then committed would be.
  /// (A real barrier writes its row in the business transaction, so a refusal
  /// that rolls back leaves no row.) Every call is also kept in `calls()`.
  bool apply(const branch_context& call, std::string what);

  /// The effects applied, in order.
  std::vector<effect> effects() const;
  /// Every call made, applied or filtered out, in order.
  std::vector<effect> calls() const;

 private:
  mutable std::mutex mutex_;
  std::set<std::tuple<std::string, std::string, std::string>> seen_;
  std::vector<effect> effects_;
  std::vector<effect> calls_;
};

/// The error a `crashing_store` throws for an operation it refuses (the
/// process has died) or reports in doubt (it was applied).
class injected_crash : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class fault {
  refuse,    ///< the operation is refused, and so is everything after it: the process died
  in_doubt,  ///< the operation is applied, then reported as failed
  takeover,  ///< another runner takes the workflow over first (its owner's lease made to lapse): the write is fenced
};

/// Which store operations a fault point counts.
enum class fault_point {
  write,    ///< a creation, or one write of a commit()
  claim,    ///< claim, claim_due, claim_resumable
  renewal,  ///< renew (takeover: the first gid renewed is taken over by another runner first)
};

/// A store decorator that injects one fault at the `at`-th operation of kind
/// `point` (1-based; 0: never), and counts operations. For `fault::refuse`
/// it calls `on_crash` once (e.g. to stop the io_context) and refuses every
/// operation after it.
class crashing_store final : public store_wrapper {
 public:
  struct plan {
    fault kind = fault::refuse;
    fault_point point = fault_point::write;
    std::size_t at = 0;
    /// takeover: the executor id of the runner that takes the workflow over.
    std::string taker = "crash-test-taker";
    /// Renewal faults only: `at` counts writes instead, and write `at` is
    /// held (not yet sent to the store) until the next lease renewal, which
    /// gets the fault; then the write goes on (unless the process died).
    /// This puts a renewal fault at a known point of the workflow: while
    /// that write is in flight. If no renewal comes within `hold_limit`,
    /// the write goes on and nothing is faulted.
    bool during_write = false;
    std::chrono::milliseconds hold_limit{std::chrono::seconds(5)};
  };

  crashing_store(std::shared_ptr<store> inner, plan p, std::function<void()> on_crash = {});
  /// A refuse fault at write `crash_at` (the first form of this class).
  explicit crashing_store(std::shared_ptr<store> inner, std::size_t crash_at = 0, std::function<void()> on_crash = {});

  std::size_t writes() const noexcept { return writes_; }
  std::size_t claims() const noexcept { return claims_; }
  std::size_t renewals() const noexcept { return renewals_; }
  /// Whether the planned fault happened.
  bool faulted() const noexcept { return faulted_; }
  /// Whether a write was held for a renewal (plan::during_write).
  bool held_a_write() const noexcept { return held_a_write_; }
  /// Whether it refused (the process is dead).
  bool crashed() const noexcept { return crashed_; }
  /// Drops the inner store (every later call fails as after a crash), so that
  /// it can be destroyed with its "process" while coroutines still hold this one.
  void detach() noexcept {
    crashed_ = true;
    reset_target();
  }

  boost::asio::awaitable<create_result> create(workflow_state initial) override;
  boost::asio::awaitable<claim_result> claim(std::string gid, std::string owner,
                                             std::chrono::milliseconds lease) override;
  boost::asio::awaitable<std::vector<write_status>> commit(std::vector<write> writes) override;
  boost::asio::awaitable<std::optional<workflow_state>> find(std::string gid) override;
  boost::asio::awaitable<std::vector<journal_record>> journal(std::string gid) override;
  boost::asio::awaitable<std::vector<std::string>> renew(std::string owner, std::vector<std::string> gids,
                                                         std::chrono::milliseconds lease) override;
  boost::asio::awaitable<void> release(std::string owner, std::vector<std::string> gids) override;
  boost::asio::awaitable<std::vector<claim_result>> claim_due(claim_request request) override;
  boost::asio::awaitable<std::vector<claim_result>> claim_resumable(claim_request request) override;

 private:
  enum class action { go, refuse, in_doubt, takeover };
  action next(fault_point p);
  void check_alive() const;
  [[noreturn]] void refuse(const std::string& what);
  // Another runner (plan_.taker) takes `gid` over, as after its owner's lease lapsed.
  boost::asio::awaitable<void> take_over(const std::string& gid);
  // plan::during_write: waits until a renewal (or hold_limit) ends the hold.
  boost::asio::awaitable<void> hold_until_renewal();
  void end_hold() noexcept;

  plan plan_;
  std::function<void()> on_crash_;
  // The write held until a renewal (plan::during_write), while it is held.
  std::shared_ptr<boost::asio::steady_timer> held_;
  bool held_a_write_ = false;
  std::size_t writes_ = 0;
  std::size_t claims_ = 0;
  std::size_t renewals_ = 0;
  bool faulted_ = false;
  bool crashed_ = false;
};

/// A clock that stands still until the test moves it (see wf/clock.hpp):
/// waits complete when `advance` or `set` reaches their time.
/// Thread-safe; a wait completes on the awaiting coroutine's executor.
class manual_clock final : public wf::clock {
 public:
  explicit manual_clock(wall_clock::time_point start = wall_clock::now());
  ~manual_clock() override;

  wall_clock::time_point now() const override;
  boost::asio::awaitable<void> wait_until(wall_clock::time_point t) override;

  /// Moves the time forward by `d` and completes the waits now due.
  void advance(wall_clock::duration d);
  /// Sets the time (forward only) and completes the waits now due.
  void set(wall_clock::time_point t);
  /// Waits not yet completed.
  std::size_t waiting() const;

  struct state;

 private:
  std::shared_ptr<state> state_;
};

/// One "process" that dies at journal write `crash_at`: a runtime with
/// `options` on a fresh io_context over `data`, seen through a
/// crashing_store that refuses that write and every later one. `start(rt)`
/// registers the workflows and starts the work (e.g. co_spawns an execute).
/// Returns once the write was refused or `limit` passed; then the runtime,
/// the io_context and every coroutine frame are destroyed, as in a killed
/// process, and the store it used is dropped. Returns whether it crashed.
/// Resume from `data` in the next "process" (a runtime with the same
/// executor id calling `recover()`, as a restarted service does).
bool run_until_crash(std::shared_ptr<store> data, std::size_t crash_at, const runtime_options& options,
                     const std::function<void(runtime&)>& start,
                     std::chrono::milliseconds limit = std::chrono::seconds(20));

struct crash_test {
  std::string workflow;  ///< registered name
  std::string gid = "crash-test";
  std::string input;
  /// Builds a fresh world of fake participants bound to `log`, once per run,
  /// and returns what registers the workflows on a runtime (called for each
  /// runtime of that run: the one that faults and the one that resumes).
  std::function<std::function<void(runtime&)>(effect_log& log)> setup;
  /// Compare result bytes too (recorded values in them are compared as
  /// "the value of operation N"; see `normalize` for more).
  bool compare_results = true;
  /// Rewrites an effect's text, a result or a failure reason before they
  /// are compared (e.g. to blank out a timestamp the participant made
  /// itself, or the last transient error a deadline's reason quotes, which
  /// an injected fault may be). Optional.
  std::function<std::string(std::string)> normalize;
  /// Which faults to inject (all three by default).
  std::vector<fault> faults{fault::refuse, fault::in_doubt, fault::takeover};
  /// Also inject each of them at a lease renewal made while write N is in
  /// flight, for every write but the creation (crashing_store's
  /// `plan::during_write`), with the first process's lease shortened to
  /// `renewal_lease` so that a renewal comes soon.
  bool renewal_faults = true;
  std::chrono::milliseconds renewal_lease{30};
  /// Options of every runtime made (the executor id is fixed, so that the
  /// resuming runtime may take over at once, as a restarted process does).
  runtime_options options;
  /// Bound on each run, so that a bug shows as a failure, not a hang.
  std::chrono::milliseconds run_limit{std::chrono::seconds(20)};
  /// Makes the store of each "process". Runs are numbered (0: the
  /// uninterrupted one, then one per fault point); the calls for one run
  /// (the process that faults, then the one that resumes) must return stores
  /// over the same data, and each run must start empty. A store made here is
  /// dropped with its process. Empty: one fresh `memory_store` per run.
  std::function<std::shared_ptr<store>(std::size_t run)> make_store;
};

struct crash_test_result {
  std::size_t journal_writes = 0;  ///< writes in the uninterrupted run
  std::size_t crash_points = 0;    ///< faulted-and-resumed runs checked
  outcome reference;               ///< the uninterrupted run's outcome
  std::vector<effect_log::effect> reference_effects;
  std::vector<std::string> mismatches;  ///< one line per divergence found

  bool ok() const noexcept { return mismatches.empty() && journal_writes > 0; }
  std::string describe() const;
};

/// Runs the crash test described above. Blocking: it makes its own
/// io_contexts; call it from a test, not from inside a running io_context.
crash_test_result check_crash_recovery(const crash_test& test);

}  // namespace wf::testing

#endif  // WF_TESTING_HPP
