// wf/when_all.hpp - running a workflow's branches in parallel.
//
//     auto a = w.new_branch("DebitA").on_rollback(credit_a).run(debit_a);
//     auto b = w.new_branch("DebitB").on_rollback(credit_b).run(debit_b);
//     auto [ra, rb] = co_await wf::when_all(std::move(a), std::move(b));
//
// `when_all` starts every awaitable it is given, in argument order (so each
// branch's operation id, and the branch id its participant sees, depends on
// the order of the arguments, not on timing), then waits until **every one**
// has ended, whatever happens to the others: a branch still running when
// another fails is awaited, never abandoned, and its outcome is journaled.
// It then returns their results (a `std::tuple`, `std::monostate` for
// `void`), or rethrows the exception of the first argument, in argument
// order, that ended with one.
//
// Semantics (docs/concepts.md, "Parallel branches"): if the workflow then
// rolls back, every branch that completed is compensated, latest completion
// first; a branch whose own action failed is compensated only with
// `compensate_on_failure`. Commit handlers run in reverse completion order too.
//
// The awaitables must belong to the calling workflow (its branches, steps and
// recorded values, or coroutines of its own that use them). Cancellation is
// forwarded: cancelling the awaiting coroutine (as the runtime does when it
// stops a run) cancels the actions still running; `when_all` still waits for
// each of them to end, and one ended by cancellation has an unknown outcome
// (it is not journaled, and runs again in the next run).
#ifndef WF_WHEN_ALL_HPP
#define WF_WHEN_ALL_HPP

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace wf {

namespace detail {

template <class T>
using result_slot = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// What the started awaitables report to, on the workflow's executor.
struct join {
  std::size_t remaining = 0;
  // (In an optional, constructed in place and moved out: Boost 1.81's
  // any_completion_handler cannot be assigned, nor posted as it is.)
  std::optional<boost::asio::any_completion_handler<void()>> waiter;
  // Cancelling the awaiting coroutine cancels every started one (a workflow
  // being stopped cancels its actions that run in them).
  std::vector<std::unique_ptr<boost::asio::cancellation_signal>> signals;
  boost::asio::cancellation_slot parent;
  // How many report handlers hold this join (see join_ref).
  std::size_t holders = 0;

  boost::asio::cancellation_slot slot_for_next() {
    signals.push_back(std::make_unique<boost::asio::cancellation_signal>());
    return signals.back()->slot();
  }
  void done(const boost::asio::any_io_executor& ex) {
    if (--remaining != 0 || !waiter) return;
    if (parent.is_connected()) parent.clear();
    boost::asio::post(ex, [h = std::move(*waiter)]() mutable { std::move(h)(); });
    waiter.reset();
  }
  // Every report handler is gone and the waiter is still here: the started
  // coroutines were destroyed without reporting (their io_context shut
  // down). The waiter holds the awaiting coroutine, which holds this join:
  // destroy it, as Asio destroys the handlers of abandoned operations, or
  // the two would keep each other alive.
  void abandon() {
    if (!waiter) return;
    if (parent.is_connected()) parent.clear();
    auto w = std::move(waiter);
    waiter.reset();
  }
  static boost::asio::awaitable<void> wait(std::shared_ptr<join> j) {
    auto init = [j](auto handler) {
      auto ex = boost::asio::get_associated_executor(handler);
      if (j->remaining == 0) {
        boost::asio::post(ex, std::move(handler));
        return;
      }
      j->parent = boost::asio::get_associated_cancellation_slot(handler);
      if (j->parent.is_connected())
        j->parent.assign([j = j.get()](boost::asio::cancellation_type type) {
          for (auto& s : j->signals) s->emit(type);
        });
      j->waiter.emplace(std::move(handler));
    };
    return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void()>(init, boost::asio::use_awaitable);
  }
};

// A report handler's hold on its join; the last one to go abandons it.
struct join_ref {
  std::shared_ptr<join> j;
  explicit join_ref(std::shared_ptr<join> p) : j(std::move(p)) { ++j->holders; }
  join_ref(const join_ref& o) : j(o.j) {
    if (j) ++j->holders;
  }
  join_ref(join_ref&& o) noexcept : j(std::move(o.j)) {}
  join_ref& operator=(const join_ref&) = delete;
  ~join_ref() {
    if (j && --j->holders == 0) j->abandon();  // (j keeps the join alive meanwhile)
  }
  join* operator->() const noexcept { return j.get(); }
};

template <class T>
struct outcome_of {
  std::optional<result_slot<T>> value;
  std::exception_ptr error;
};

// The coroutine a started awaitable runs in. Once cancelled, it goes on: a
// branch's outcome is still journaled (nothing is abandoned).
template <class T>
boost::asio::awaitable<T> started(boost::asio::awaitable<T> op) {
  co_await boost::asio::this_coro::throw_if_cancelled(false);
  co_return co_await std::move(op);
}

// Starts `op` now (co_spawn on the current executor runs it inline up to its
// first suspension) and reports its outcome into `slot`.
template <class T>
void start_one(const boost::asio::any_io_executor& ex, const std::shared_ptr<join>& j, outcome_of<T>& slot,
               boost::asio::awaitable<T> op) {
  auto cancel = j->slot_for_next();
  if constexpr (std::is_void_v<T>) {
    auto report = [ex, j = join_ref(j), &slot](std::exception_ptr e) {
      if (e) slot.error = e; else slot.value.emplace();
      j->done(ex);
    };
    boost::asio::co_spawn(ex, started(std::move(op)), boost::asio::bind_cancellation_slot(cancel, std::move(report)));
  } else {
    auto report = [ex, j = join_ref(j), &slot](std::exception_ptr e, T v) {
      if (e) slot.error = e; else slot.value.emplace(std::move(v));
      j->done(ex);
    };
    boost::asio::co_spawn(ex, started(std::move(op)), boost::asio::bind_cancellation_slot(cancel, std::move(report)));
  }
}

template <class... T, std::size_t... I>
boost::asio::awaitable<std::tuple<result_slot<T>...>> when_all_of(std::index_sequence<I...>,
                                                                  boost::asio::awaitable<T>... ops) {
  auto ex = co_await boost::asio::this_coro::executor;
  auto j = std::make_shared<join>();
  j->remaining = sizeof...(T);
  // The slots live in this frame, which waits for every report.
  std::tuple<outcome_of<T>...> slots;
  (start_one<T>(ex, j, std::get<I>(slots), std::move(ops)), ...);
  co_await join::wait(j);
  std::exception_ptr first;
  ((first = first ? first : std::get<I>(slots).error), ...);
  if (first) std::rethrow_exception(first);
  co_return std::tuple<result_slot<T>...>(std::move(*std::get<I>(slots).value)...);
}

}  // namespace detail

/// Starts `ops` in order and waits for all of them; see the top of this file.
template <class... T>
boost::asio::awaitable<std::tuple<detail::result_slot<T>...>> when_all(boost::asio::awaitable<T>... ops) {
  return detail::when_all_of(std::index_sequence_for<T...>{}, std::move(ops)...);
}

/// The same for any number of awaitables of one type; results in order.
template <class T>
boost::asio::awaitable<std::vector<detail::result_slot<T>>> when_all(std::vector<boost::asio::awaitable<T>> ops) {
  auto ex = co_await boost::asio::this_coro::executor;
  auto j = std::make_shared<detail::join>();
  j->remaining = ops.size();
  std::vector<detail::outcome_of<T>> slots(ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i) detail::start_one<T>(ex, j, slots[i], std::move(ops[i]));
  if (!ops.empty()) co_await detail::join::wait(j);
  std::vector<detail::result_slot<T>> out;
  out.reserve(slots.size());
  for (auto& s : slots)
    if (s.error) std::rethrow_exception(s.error);
  for (auto& s : slots) out.push_back(std::move(*s.value));
  co_return out;
}

}  // namespace wf

#endif  // WF_WHEN_ALL_HPP
