// Completing an Asio operation from another thread (a database worker, a
// gRPC callback) without ever touching an io_context that is gone.
//
// An io_context may be stopped and destroyed at any moment, while another
// thread is still working for one of its coroutines (a service stopping, a
// process-level test tearing a runtime down). Each execution context gets a
// `context_guard` service that knows whether the context is still alive and
// holds every operation other threads will complete on it. When the context
// shuts down, the guard destroys those operations' handlers there and then
// (while the context still exists, as Asio does with its own pending
// operations), and a thread that finishes its work later finds nothing to
// complete. A completion is posted under the guard's lock, so the context
// cannot be destroyed in the middle of the post.
#ifndef WF_SRC_REMOTE_COMPLETION_HPP
#define WF_SRC_REMOTE_COMPLETION_HPP

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/query.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace wf::detail {

/// An operation waiting for another thread (an intrusive list node).
struct pending_operation {
  virtual ~pending_operation() = default;
  pending_operation* prev = nullptr;
  pending_operation* next = nullptr;
};

/// What a context's guard shares with the threads completing its operations.
class context_state {
 public:
  context_state() { head_.prev = head_.next = &head_; }

  /// Registers `fn` to run when the context shuts down (before its pending
  /// handlers are destroyed); returns an id for remove_hook. Runs `fn` at
  /// once if the context is already shut down.
  std::uint64_t add_hook(std::function<void()> fn);
  void remove_hook(std::uint64_t id);

  /// Posts `fn` to `ex` if the context is alive; drops it otherwise.
  template <class Executor, class Fn>
  bool post_if_alive(const Executor& ex, Fn&& fn) {
    std::lock_guard lock(mutex_);
    if (!alive_) return false;
    boost::asio::post(ex, std::forward<Fn>(fn));
    return true;
  }

  // For remote_completion.
  void link(pending_operation* op);
  /// Unlinks `op` and posts what `make()` returns (which takes `op` over) to
  /// the executor `executor_of()` returns, under the lock; false (and
  /// neither called) if the context shut down and destroyed `op` already:
  /// nothing may read `op` before this has checked that.
  template <class ExecutorOf, class Make>
  bool complete(pending_operation* op, ExecutorOf&& executor_of, Make&& make) {
    std::lock_guard lock(mutex_);
    if (!alive_) return false;
    unlink(op);
    boost::asio::post(executor_of(), make());
    return true;
  }

  /// The context is shutting down: runs the hooks, then destroys the
  /// pending operations (their handlers belong to it).
  void shut_down();

 private:
  void unlink(pending_operation* op) noexcept;

  std::mutex mutex_;
  bool alive_ = true;
  pending_operation head_;
  std::uint64_t next_hook_ = 1;
  std::vector<std::pair<std::uint64_t, std::function<void()>>> hooks_;
};

/// The Asio service holding a context's state.
class context_guard final : public boost::asio::execution_context::service {
 public:
  using key_type = context_guard;
  inline static boost::asio::execution_context::id id;

  explicit context_guard(boost::asio::execution_context& ctx)
      : boost::asio::execution_context::service(ctx), state_(std::make_shared<context_state>()) {}

  const std::shared_ptr<context_state>& state() const noexcept { return state_; }

 private:
  void shutdown() override { state_->shut_down(); }
  std::shared_ptr<context_state> state_;
};

/// The guard state of the context `ex` belongs to.
template <class Executor>
std::shared_ptr<context_state> state_of(const Executor& ex) {
  auto& ctx = boost::asio::query(ex, boost::asio::execution::context);
  return boost::asio::use_service<context_guard>(ctx).state();
}

/// One operation, started on its context's thread, completed from any
/// thread with `complete(args...)`: the handler then runs on its own
/// executor. Meanwhile the context counts it as outstanding work. If the
/// context shuts down first, the handler is destroyed with it and
/// `complete` does nothing. If the object is destroyed without completing,
/// the handler is destroyed on its own executor (the operation is abandoned,
/// as Asio abandons operations of a destroyed object).
template <class... Args>
class remote_completion {
 public:
  remote_completion() = default;

  template <class Handler>
  explicit remote_completion(Handler handler) {
    auto work = boost::asio::prefer(boost::asio::get_associated_executor(handler),
                                    boost::asio::execution::outstanding_work.tracked);
    state_ = state_of(work);
    op_ = new node<Handler, decltype(work)>(std::move(handler), std::move(work));
    state_->link(op_);
  }

  remote_completion(remote_completion&& o) noexcept
      : state_(std::move(o.state_)), op_(std::exchange(o.op_, nullptr)) {}
  remote_completion& operator=(remote_completion&& o) noexcept {
    if (this != &o) {
      abandon();
      state_ = std::move(o.state_);
      op_ = std::exchange(o.op_, nullptr);
    }
    return *this;
  }
  ~remote_completion() { abandon(); }

  /// Runs the handler with `args` on its executor (once; later calls do nothing).
  void complete(Args... args) {
    // (`op` is cast to base* only once the context is known to be alive:
    // otherwise it was destroyed, and even a cast may not touch it.)
    auto* op = std::exchange(op_, nullptr);
    if (!op) return;
    // If the context is gone, it destroyed the handler already: nothing to do.
    state_->complete(op, [op] { return static_cast<base*>(op)->untracked(); }, [&] {
      return [owned = std::unique_ptr<base>(static_cast<base*>(op)), ... a = std::move(args)]() mutable {
        owned->invoke(std::move(a)...);
      };
    });
  }

 private:
  struct base : pending_operation {
    virtual void invoke(Args... args) = 0;
    virtual boost::asio::any_io_executor untracked() const = 0;
  };
  template <class Handler, class Work>
  struct node final : base {
    node(Handler h, Work w) : handler(std::move(h)), work(std::move(w)) {}
    void invoke(Args... args) override {
      auto h = std::move(handler);
      auto w = std::move(work);  // released once the handler has run
      std::move(h)(std::move(args)...);
    }
    boost::asio::any_io_executor untracked() const override {
      return boost::asio::prefer(work, boost::asio::execution::outstanding_work.untracked);
    }
    Handler handler;
    Work work;
  };

  void abandon() noexcept {
    auto* op = std::exchange(op_, nullptr);  // (cast as in complete())
    if (!op) return;
    state_->complete(op, [op] { return static_cast<base*>(op)->untracked(); },
                     [op] { return [owned = std::unique_ptr<base>(static_cast<base*>(op))] {}; });
  }

  std::shared_ptr<context_state> state_;
  pending_operation* op_ = nullptr;
};

/// The executor `handler` runs on, counted as outstanding work: hold it while
/// another thread works for the handler, so that its io_context does not run
/// out of work meanwhile.
template <class Handler>
auto tracked_executor(const Handler& handler) {
  return boost::asio::prefer(boost::asio::get_associated_executor(handler),
                             boost::asio::execution::outstanding_work.tracked);
}

}  // namespace wf::detail

#endif  // WF_SRC_REMOTE_COMPLETION_HPP
