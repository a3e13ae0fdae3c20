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
// (Name lambdas that capture by value before the co_await, as above, or pass
// the values as arguments to a lambda without captures:
//     co_await w.new_branch("TransOut").run([](const wf::branch_context& c, const auto& bank, auto amount) {
//       return bank->trans_out(c, amount); }, bank, amount);
// GCC before 13 miscompiles a capturing lambda written inside a co_await
// expression and destroys its captures twice (GCC PR c++/100611); with such a
// compiler `run`, `step` and the handlers chained on `new_branch` refuse that
// form at compile time. See docs/concepts.md, "GCC 12".)
//
// Operations. Each branch, step and recorded value is an *operation*; the
// code's operations get ids 1, 2, 3... in the order it starts them. Several
// may run at once (wf/when_all.hpp):
//
//     co_await wf::when_all(w.new_branch("A").on_rollback(undo_a).run(a),
//                           w.new_branch("B").on_rollback(undo_b).run(b));
//
// What is journaled, and what replays:
//  * `branch::run` and `step` journal the action's outcome (result bytes or
//    `wf::failure` reason) before returning. On replay the recorded outcome is
//    returned (or the failure rethrown) without calling the action, and the
//    branch's handlers are registered again.
//  * `now`, `uuid`, `random` and `record` journal the value; on replay the
//    recorded value is returned.
//  * Replay matches operations with the journal by operation id; a different
//    kind, name or branch id for the same id is a `wf::nondeterminism_error`.
//
// Rules for workflow code (see docs/concepts.md): be deterministic between
// these calls (no clocks, random numbers, I/O, or reading mutable globals
// except through them); start operations in an order that depends only on
// the input and on earlier recorded results; do not catch and hide
// `wf::nondeterminism_error` or `wf::lease_lost_error` (they stop the run even if
// caught). Call the workflow object from the workflow's executor only.
//
// Lifetime: the `workflow&` is valid during the call of the workflow function
// only. Handlers are stored until the workflow finishes, so what they capture
// by reference must outlive the runtime's use of them (capture by value).
// The awaitable a `run`, `step` or `record` call returns holds everything it
// needs: the branch object may go away before it is awaited.
#ifndef WF_WORKFLOW_HPP
#define WF_WORKFLOW_HPP

#include <wf/codec.hpp>
#include <wf/journal.hpp>

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace wf {

struct branch_context;

namespace detail {
class attempt;

template <class A>
struct awaitable_value {
  static_assert(sizeof(A) == 0,
                "wf: an action, step or workflow must return boost::asio::awaitable<T> (make it a coroutine: "
                "`-> asio::awaitable<T>` with co_return)");
};
template <class T, class E>
struct awaitable_value<boost::asio::awaitable<T, E>> {
  using type = T;
};
template <class A>
using awaitable_value_t = typename awaitable_value<std::decay_t<A>>::type;

template <class T>
struct is_std_function : std::false_type {};
template <class R, class... A>
struct is_std_function<std::function<R(A...)>> : std::true_type {};

// GCC before 13 destroys twice the captures of a lambda (and of any object)
// made inside a co_await expression (GCC PR c++/100611; also 99576, 101367).
// `run` and `step` are awaited where they are called, so a temporary they are
// given that owns resources is refused there. Named objects, objects with
// nothing to destroy (a lambda without captures), and std::function (what
// wf::http's action() and other factories return) are accepted.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
template <class F>
inline constexpr bool safe_in_co_await = std::is_lvalue_reference_v<F> ||
                                         std::is_trivially_destructible_v<std::remove_cvref_t<F>> ||
                                         is_std_function<std::remove_cvref_t<F>>::value;
#else
template <class F>
inline constexpr bool safe_in_co_await = true;
#endif
#define WF_CHECK_SAFE_IN_CO_AWAIT(F)                                                                              \
  static_assert(::wf::detail::safe_in_co_await<F>,                                                               \
                "wf: GCC < 13 miscompiles a capturing lambda written inside a co_await expression and destroys " \
                "its captures twice (GCC PR c++/100611). Name the lambda first (auto a = [x](...) {...}; "      \
                "co_await b.run(a);), or pass the values to a lambda without captures "                         \
                "(b.run([](const wf::branch_context& c, auto x) {...}, x)). See docs/concepts.md, \"GCC 12\".")

// Binds `args` after the context: `fn(ctx, args...)`, awaited inside a
// coroutine of its own, so that parameters `fn` takes by value live until
// the awaitable it returns has completed (they end with the full-expression).
template <class F, class... A>
auto bind_args(F fn, A... args) {
  using awaitable_type = std::invoke_result_t<F&, const branch_context&, A&...>;
  return [fn = std::move(fn), ... a = std::move(args)](const branch_context& c) mutable -> awaitable_type {
    co_return co_await fn(c, a...);
  };
}
}  // namespace detail

/// What an action or handler is told about the call it makes. A participant
/// needs these to guard its work with the barrier (they are what DTM sends).
/// The views are valid during the call only.
struct branch_context {
  std::string_view gid;        ///< the workflow id
  std::string_view branch_id;  ///< "01", "02", ... in the order the code starts branches and steps
  std::string_view op;         ///< "action", "rollback", "commit" or "finish"
  std::string_view name;       ///< the branch's name
};

/// An `on_rollback` / `on_commit` / `on_finish` handler. A transient
/// exception it throws is retried with backoff until it succeeds.
using handler = std::function<boost::asio::awaitable<void>(const branch_context&)>;

/// A branch action at the byte level: returns the result bytes, throws
/// `wf::failure` for a business failure, anything else for a transient error.
using raw_action = std::function<boost::asio::awaitable<std::string>(const branch_context&)>;

namespace detail {
/// What a branch hands to the attempt when it runs.
struct branch_handlers {
  handler on_rollback, on_commit, on_finish;
};
struct branch_spec {
  std::string name;
  std::unique_ptr<branch_handlers> handlers;  // once one is set (most branches have none)
  std::optional<bool> compensate_on_failure;

  branch_handlers& set_handlers() {
    if (!handlers) handlers = std::make_unique<branch_handlers>();
    return *handlers;
  }
};
boost::asio::awaitable<std::string> run_branch(attempt* a, record_kind kind, branch_spec spec, raw_action action);
boost::asio::awaitable<std::string> record_value(attempt* a, std::string name, std::function<std::string()> fn);

template <class T>
T decode_result(const std::string& bytes) {
  if constexpr (std::is_void_v<T>)
    return;
  else
    return codec<T>::decode(bytes);
}

// Runs a raw operation and decodes its result. Everything it uses is a
// parameter (in its frame), so the awaitable outlives any temporary it was
// made from.
template <class T>
boost::asio::awaitable<T> decoded(boost::asio::awaitable<std::string> op) {
  if constexpr (std::is_void_v<T>) {
    co_await std::move(op);
  } else {
    auto bytes = co_await std::move(op);
    co_return codec<T>::decode(bytes);
  }
}

// Wraps a typed action into a raw one.
template <class F>
raw_action to_raw_action(F action) {
  using result = awaitable_value_t<std::invoke_result_t<F&, const branch_context&>>;
  static_assert(std::is_void_v<result> || codec_available<result>,
                "wf: no wf::codec<T> for this action's result type T: include <wf/json.hpp> or <wf/protobuf.hpp>, "
                "or specialise wf::codec<T> (see wf/codec.hpp)");
  return [a = std::move(action)](const branch_context& c) mutable -> boost::asio::awaitable<std::string> {
    if constexpr (std::is_void_v<result>) {
      co_await a(c);
      co_return std::string();
    } else {
      co_return codec<result>::encode(co_await a(c));
    }
  };
}
}  // namespace detail

class workflow {
 public:
  class branch;

  workflow(const workflow&) = delete;
  workflow& operator=(const workflow&) = delete;

  const std::string& gid() const noexcept;
  const std::string& name() const noexcept;

  /// True while the code is being replayed over journaled records (useful to
  /// keep logs quiet); false once it runs past them.
  bool replaying() const noexcept;

  /// Starts a branch (DTM's `wf.NewBranch()`): register its handlers, then `run` it.
  branch new_branch(std::string name);

  /// A recorded local step: like a branch with no handlers. `action` is
  /// `(const branch_context&) -> asio::awaitable<T>`; the step gets a branch id
  /// too, so a local database transaction can use the barrier.
  template <class F>
  auto step(std::string name, F&& action) {
    WF_CHECK_SAFE_IN_CO_AWAIT(F);
    return step_unchecked(std::move(name), std::decay_t<F>(std::forward<F>(action)));
  }

  /// `step(name, fn)` with `fn(context, args...)`: the values go to the
  /// function as arguments (a lambda without captures stays safe inline).
  template <class F, class A0, class... A>
  auto step(std::string name, F&& fn, A0&& a0, A&&... args) {
    WF_CHECK_SAFE_IN_CO_AWAIT(F);
    return step_unchecked(std::move(name),
                          detail::bind_args(std::decay_t<F>(std::forward<F>(fn)), std::decay_t<A0>(std::forward<A0>(a0)),
                                            std::decay_t<A>(std::forward<A>(args))...));
  }

  /// Records the value of `fn()` (any function of no arguments returning a
  /// codec-able type); on replay returns the recorded value without calling it.
  template <class F>
  auto record(std::string name, F fn) -> boost::asio::awaitable<std::invoke_result_t<F&>> {
    using result = std::invoke_result_t<F&>;
    std::function<std::string()> raw = [f = std::move(fn)]() mutable { return codec<result>::encode(f()); };
    return detail::decoded<result>(record_bytes(std::move(name), std::move(raw)));
  }

  /// The current time (from the runtime's clock), journaled.
  boost::asio::awaitable<wall_clock::time_point> now();
  /// A random version-4 UUID ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"), journaled.
  boost::asio::awaitable<std::string> uuid();
  /// A random 64-bit number, journaled.
  boost::asio::awaitable<std::uint64_t> random();

  /// Byte-level forms of `step` and `record`.
  boost::asio::awaitable<std::string> step_bytes(std::string name, raw_action action);
  boost::asio::awaitable<std::string> record_bytes(std::string name, std::function<std::string()> fn);

 private:
  template <class G>
  auto step_unchecked(std::string name, G action)
      -> boost::asio::awaitable<detail::awaitable_value_t<std::invoke_result_t<G&, const branch_context&>>> {
    using result = detail::awaitable_value_t<std::invoke_result_t<G&, const branch_context&>>;
    return detail::decoded<result>(step_bytes(std::move(name), detail::to_raw_action(std::move(action))));
  }

  friend class detail::attempt;
  explicit workflow(detail::attempt& a) noexcept : attempt_(&a) {}
  detail::attempt* attempt_;
};

/// A branch being set up: add handlers, then call `run` once.
class workflow::branch {
 public:
  /// Compensation, run in reverse order of completion if the workflow rolls back.
  /// A handler is `(const branch_context&) -> asio::awaitable<void>`.
  ///
  /// Set on a named branch (`auto b = w.new_branch("A"); b.on_rollback(...)`)
  /// a handler may be any callable. Chained on the temporary that
  /// `new_branch` returns, which is nearly always written inside the
  /// `co_await` that runs it, it is checked like an action (GCC < 13: no
  /// temporary that owns resources; see docs/concepts.md, "GCC 12").
  template <class H>
  branch& on_rollback(H&& h) & {
    return set(&detail::branch_handlers::on_rollback, std::forward<H>(h));
  }
  template <class H>
  branch&& on_rollback(H&& h) && {
    WF_CHECK_SAFE_IN_CO_AWAIT(H);
    return std::move(set(&detail::branch_handlers::on_rollback, std::forward<H>(h)));
  }
  /// Run in reverse order of completion when the workflow commits (e.g.
  /// TCC's Confirm). Checked as `on_rollback` is.
  template <class H>
  branch& on_commit(H&& h) & {
    return set(&detail::branch_handlers::on_commit, std::forward<H>(h));
  }
  template <class H>
  branch&& on_commit(H&& h) && {
    WF_CHECK_SAFE_IN_CO_AWAIT(H);
    return std::move(set(&detail::branch_handlers::on_commit, std::forward<H>(h)));
  }
  /// Run after the commit or rollback handlers, whatever the outcome.
  /// Checked as `on_rollback` is.
  template <class H>
  branch& on_finish(H&& h) & {
    return set(&detail::branch_handlers::on_finish, std::forward<H>(h));
  }
  template <class H>
  branch&& on_finish(H&& h) && {
    WF_CHECK_SAFE_IN_CO_AWAIT(H);
    return std::move(set(&detail::branch_handlers::on_finish, std::forward<H>(h)));
  }
  /// Also compensate this branch if its own action fails with `wf::failure`
  /// (by default, as in DTM, a branch whose action failed is not compensated).
  branch& compensate_on_failure(bool yes = true) & {
    spec_.compensate_on_failure = yes;
    return *this;
  }
  branch&& compensate_on_failure(bool yes = true) && { return std::move(compensate_on_failure(yes)); }

  /// Runs the action `(const branch_context&) -> asio::awaitable<T>` and
  /// returns its result, journaled; see the header comment for replay. The
  /// branch's operation starts when the returned awaitable is first awaited
  /// (or started by `wf::when_all`). Throws `std::logic_error` if called twice.
  template <class F>
  auto run(F&& action) {
    WF_CHECK_SAFE_IN_CO_AWAIT(F);
    return run_unchecked(std::decay_t<F>(std::forward<F>(action)));
  }

  /// `run(fn)` with `fn(context, args...)`: the values go to the function as
  /// arguments, so a lambda without captures can be written inline safely:
  ///     co_await w.new_branch("A").run([](const wf::branch_context& c, auto b, int n) {
  ///       return b->debit(c, n); }, bank, 30);
  template <class F, class A0, class... A>
  auto run(F&& fn, A0&& a0, A&&... args) {
    WF_CHECK_SAFE_IN_CO_AWAIT(F);
    return run_unchecked(detail::bind_args(std::decay_t<F>(std::forward<F>(fn)), std::decay_t<A0>(std::forward<A0>(a0)),
                                           std::decay_t<A>(std::forward<A>(args))...));
  }

  /// Byte-level form of `run`.
  boost::asio::awaitable<std::string> run_bytes(raw_action action);

 private:
  template <class G>
  auto run_unchecked(G action)
      -> boost::asio::awaitable<detail::awaitable_value_t<std::invoke_result_t<G&, const branch_context&>>> {
    using result = detail::awaitable_value_t<std::invoke_result_t<G&, const branch_context&>>;
    return detail::decoded<result>(run_bytes(detail::to_raw_action(std::move(action))));
  }

  template <class H>
  branch& set(handler detail::branch_handlers::*which, H&& h) {
    spec_.set_handlers().*which = handler(std::forward<H>(h));
    return *this;
  }

  friend class workflow;
  branch(detail::attempt& a, std::string name) : attempt_(&a) { spec_.name = std::move(name); }

  detail::attempt* attempt_;
  detail::branch_spec spec_;
  bool ran_ = false;
};

}  // namespace wf

#endif  // WF_WORKFLOW_HPP
