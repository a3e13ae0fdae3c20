// wf/testing.hpp - crash-test your own workflows (target wf::testing).
//
// `check_crash_recovery` runs a workflow once, uninterrupted, and counts its
// journal writes W. Then, for every N in 1..W, it runs it again from scratch
// with a "crash" at write N: the store refuses that write (and every later
// one), the runtime and its io_context are torn down as a killed process
// would be, and a fresh runtime resumes from the surviving journal. Each
// resumed run must end with the same outcome and the same sequence of effects
// on participants - every action and compensation applied exactly once, once
// duplicates are filtered as the barrier would - as the uninterrupted run.
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

#include <wf/runtime.hpp>
#include <wf/store.hpp>
#include <wf/workflow.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
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
  /// that rolls back leaves no row.)
  bool apply(const branch_context& call, std::string what);

  std::vector<effect> effects() const;

 private:
  mutable std::mutex mutex_;
  std::set<std::tuple<std::string, std::string, std::string>> seen_;
  std::vector<effect> effects_;
};

/// A store decorator that refuses the `crash_at`-th write and every write
/// after it, as if the process had died there, and calls `on_crash` once.
/// `writes()` counts write operations (create and each write of a commit).
class crashing_store final : public store {
 public:
  explicit crashing_store(std::shared_ptr<store> inner, std::size_t crash_at = 0,
                          std::function<void()> on_crash = {});

  std::size_t writes() const noexcept { return writes_; }
  bool crashed() const noexcept { return crashed_; }
  /// Drops the inner store (every later call fails as after a crash), so that
  /// it can be destroyed with its "process" while coroutines still hold this one.
  void detach() noexcept {
    crashed_ = true;
    inner_.reset();
  }

  boost::asio::awaitable<create_result> create(workflow_state initial) override;
  boost::asio::awaitable<claim_result> claim(std::string gid, std::string owner,
                                             std::chrono::milliseconds lease) override;
  boost::asio::awaitable<std::vector<write_status>> commit(std::vector<write> writes) override;
  boost::asio::awaitable<std::vector<std::string>> renew(std::string owner, std::vector<std::string> gids,
                                                         std::chrono::milliseconds lease) override;
  boost::asio::awaitable<std::optional<workflow_state>> find(std::string gid) override;
  boost::asio::awaitable<std::vector<journal_record>> journal(std::string gid) override;
  boost::asio::awaitable<std::vector<workflow_state>> runnable(std::string owner, std::size_t limit) override;
  boost::asio::awaitable<std::size_t> purge(wall_clock::time_point before) override;
  void on_new_work(std::function<void()> callback) override { inner_->on_new_work(std::move(callback)); }

 private:
  void count_write();  // throws once crashed

  std::shared_ptr<store> inner_;
  std::size_t crash_at_;
  std::function<void()> on_crash_;
  std::size_t writes_ = 0;
  bool crashed_ = false;
};

/// The error a `crashing_store` throws for refused writes.
class injected_crash : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct crash_test {
  std::string workflow;  ///< registered name
  std::string gid = "crash-test";
  std::string input;
  /// Builds a fresh world of fake participants bound to `log`, once per run,
  /// and returns what registers the workflows on a runtime (called for each
  /// runtime of that run: the one that crashes and the one that resumes).
  std::function<std::function<void(runtime&)>(effect_log& log)> setup;
  /// Compare result bytes too (turn off if the result holds now()/uuid()).
  bool compare_results = true;
  /// Options of every runtime made (the executor id is fixed, so that the
  /// resuming runtime may take over at once, as a restarted process does).
  runtime_options options;
  /// Bound on each run, so that a bug shows as a failure, not a hang.
  std::chrono::milliseconds run_limit{std::chrono::seconds(20)};
  /// Makes the store of each "process". Runs are numbered (0: the
  /// uninterrupted one, N: the one crashed at write N); the calls for one run
  /// (the process that crashes, then the one that resumes) must return stores
  /// over the same data, and each run must start empty. A store made here is
  /// dropped with its process. Empty: one fresh `memory_store` per run.
  std::function<std::shared_ptr<store>(std::size_t run)> make_store;
};

struct crash_test_result {
  std::size_t journal_writes = 0;  ///< writes in the uninterrupted run
  std::size_t crash_points = 0;    ///< crashed-and-resumed runs checked
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
