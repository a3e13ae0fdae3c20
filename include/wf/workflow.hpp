// wf/workflow.hpp - what a workflow's code sees: branches, steps and recorded values.
//
// A workflow is a coroutine `asio::awaitable<Out> fn(wf::workflow&, In)`
// registered on a `wf::runtime`. Everything it does that touches the world,
// or that would come out differently on a second run, goes through the
// `wf::workflow` object so that it is journaled:
//
//     auto revert = [bank, amount](const wf::branch_context& c) { return bank->trans_out_revert(c, amount); };
//     auto action = [bank, amount](const wf::branch_context& c) { return bank->trans_out(c, amount); };
//     auto out = co_await w.new_branch("TransOut").on_rollback(revert).run(action);
//
// (Name lambdas that capture by value before the co_await, as above: GCC 12
// miscompiles such a lambda written inside a co_await expression and destroys
// its captures twice. See docs/concepts.md, "GCC 12".)
//
// What is journaled, and what replays:
//  * `branch::run` and `step` journal the action's outcome (result bytes or
//    `wf::failure` reason) before returning. On replay the recorded outcome is
//    returned (or the failure rethrown) without calling the action, and the
//    branch's handlers are registered again.
//  * `now`, `uuid`, `random` and `record` journal the value; on replay the
//    recorded value is returned.
//  * Each call is matched with the journal by position; a different kind or
//    name at the same position is a `wf::nondeterminism_error`.
//
// Rules for workflow code (see docs/concepts.md): be deterministic between
// these calls (no clocks, random numbers, I/O, or reading mutable globals
// except through them); run branches one at a time, in an order that depends
// only on the input and on earlier recorded results; do not catch and hide
// `wf::nondeterminism_error` or `wf::lease_lost_error` (they stop the run even if
// caught).
//
// Lifetime: the `workflow&` is valid during the call of the workflow function
// only. Handlers are stored until the workflow finishes, so what they capture
// by reference must outlive the runtime's use of them (capture by value).
#ifndef WF_WORKFLOW_HPP
#define WF_WORKFLOW_HPP

#include <wf/codec.hpp>
#include <wf/journal.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace wf {

namespace detail {
class attempt;

template <class A>
struct awaitable_value;
template <class T, class E>
struct awaitable_value<boost::asio::awaitable<T, E>> {
  using type = T;
};
template <class A>
using awaitable_value_t = typename awaitable_value<std::decay_t<A>>::type;
}  // namespace detail

/// What an action or handler is told about the call it makes. A participant
/// needs these to guard its work with the barrier (they are what DTM sends).
/// The views are valid during the call only.
struct branch_context {
  std::string_view gid;        ///< the workflow id
  std::string_view branch_id;  ///< "01", "02", ... in the order the code reaches branches and steps
  std::string_view op;         ///< "action", "rollback", "commit" or "finish"
  std::string_view name;       ///< the branch's name
};

/// An `on_rollback` / `on_commit` / `on_finish` handler. Any exception it
/// throws is retried with backoff until it succeeds.
using handler = std::function<boost::asio::awaitable<void>(const branch_context&)>;

/// A branch action at the byte level: returns the result bytes, throws
/// `wf::failure` for a business failure, anything else for a transient error.
using raw_action = std::function<boost::asio::awaitable<std::string>(const branch_context&)>;

class workflow {
 public:
  class branch;

  workflow(const workflow&) = delete;
  workflow& operator=(const workflow&) = delete;

  const std::string& gid() const noexcept;
  const std::string& name() const noexcept;

  /// True while the code is being replayed over journaled records (useful to
  /// keep logs quiet); false once it runs past the end of the journal.
  bool replaying() const noexcept;

  /// Starts a branch (DTM's `wf.NewBranch()`): register its handlers, then `run` it.
  branch new_branch(std::string name);

  /// A recorded local step: like a branch with no handlers. `action` is
  /// `(const branch_context&) -> asio::awaitable<T>`; the step gets a branch id
  /// too, so a local database transaction can use the barrier.
  template <class F>
  auto step(std::string name, F action) -> boost::asio::awaitable<detail::awaitable_value_t<
      std::invoke_result_t<F&, const branch_context&>>>;

  /// Records the value of `fn()` (any function of no arguments returning a
  /// codec-able type); on replay returns the recorded value without calling it.
  template <class F>
  auto record(std::string name, F fn) -> boost::asio::awaitable<std::invoke_result_t<F&>>;

  /// The current time, journaled.
  boost::asio::awaitable<wall_clock::time_point> now();
  /// A random version-4 UUID ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"), journaled.
  boost::asio::awaitable<std::string> uuid();
  /// A random 64-bit number, journaled.
  boost::asio::awaitable<std::uint64_t> random();

  /// Byte-level forms of `step` and `record`.
  boost::asio::awaitable<std::string> step_bytes(std::string name, raw_action action);
  boost::asio::awaitable<std::string> record_bytes(std::string name, std::function<std::string()> fn);

 private:
  friend class detail::attempt;
  explicit workflow(detail::attempt& a) noexcept : attempt_(&a) {}
  detail::attempt* attempt_;
};

/// A branch being set up: add handlers, then call `run` once.
class workflow::branch {
 public:
  /// Compensation, run in reverse order if the workflow rolls back.
  branch& on_rollback(handler h);
  /// Run in reverse order when the workflow commits (e.g. TCC's Confirm).
  branch& on_commit(handler h);
  /// Run after the commit or rollback handlers, whatever the outcome.
  branch& on_finish(handler h);
  /// Also compensate this branch if its own action fails with `wf::failure`
  /// (by default, as in DTM, a branch whose action failed is not compensated).
  branch& compensate_on_failure(bool yes = true);

  /// Runs the action `(const branch_context&) -> asio::awaitable<T>` and
  /// returns its result, journaled; see the header comment for replay.
  template <class F>
  auto run(F action) -> boost::asio::awaitable<detail::awaitable_value_t<
      std::invoke_result_t<F&, const branch_context&>>>;

  /// Byte-level form of `run`.
  boost::asio::awaitable<std::string> run_bytes(raw_action action);

 private:
  friend class workflow;
  branch(detail::attempt& a, std::string name) : attempt_(&a), name_(std::move(name)) {}

  detail::attempt* attempt_;
  std::string name_;
  handler on_rollback_;
  handler on_commit_;
  handler on_finish_;
  std::optional<bool> compensate_on_failure_;
};

namespace detail {
// Wraps a typed action into a raw one.
template <class F>
raw_action to_raw_action(F action) {
  using result = awaitable_value_t<std::invoke_result_t<F&, const branch_context&>>;
  return [a = std::move(action)](const branch_context& c) mutable -> boost::asio::awaitable<std::string> {
    if constexpr (std::is_void_v<result>) {
      co_await a(c);
      co_return std::string();
    } else {
      co_return codec<result>::encode(co_await a(c));
    }
  };
}

template <class T>
T decode_result(std::string bytes) {
  if constexpr (std::is_void_v<T>)
    return;
  else
    return codec<T>::decode(bytes);
}
}  // namespace detail

template <class F>
auto workflow::step(std::string name, F action) -> boost::asio::awaitable<detail::awaitable_value_t<
    std::invoke_result_t<F&, const branch_context&>>> {
  using result = detail::awaitable_value_t<std::invoke_result_t<F&, const branch_context&>>;
  raw_action raw = detail::to_raw_action(std::move(action));
  auto bytes = co_await step_bytes(std::move(name), std::move(raw));
  co_return detail::decode_result<result>(std::move(bytes));
}

template <class F>
auto workflow::record(std::string name, F fn) -> boost::asio::awaitable<std::invoke_result_t<F&>> {
  using result = std::invoke_result_t<F&>;
  // Built in its own statement: GCC 12 destroys a capturing lambda written
  // inside a co_await expression twice (see docs/concepts.md, "GCC 12").
  std::function<std::string()> raw = [f = std::move(fn)]() mutable { return codec<result>::encode(f()); };
  auto bytes = co_await record_bytes(std::move(name), std::move(raw));
  co_return codec<result>::decode(bytes);
}

template <class F>
auto workflow::branch::run(F action) -> boost::asio::awaitable<detail::awaitable_value_t<
    std::invoke_result_t<F&, const branch_context&>>> {
  using result = detail::awaitable_value_t<std::invoke_result_t<F&, const branch_context&>>;
  raw_action raw = detail::to_raw_action(std::move(action));
  auto bytes = co_await run_bytes(std::move(raw));
  co_return detail::decode_result<result>(std::move(bytes));
}

}  // namespace wf

#endif  // WF_WORKFLOW_HPP
