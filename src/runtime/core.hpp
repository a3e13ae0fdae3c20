// The runtime's internals, shared by its parts:
//  * runtime.cpp - the public API (execute, enqueue, recover, shutdown...);
//  * driver.cpp  - driving one workflow: attempts, backoff, closing, stuck;
//  * poller.cpp  - taking over due workflows, retention;
//  * leases.cpp  - renewing the leases of the workflows running here.
// Everything here lives on the runtime's executor.
#ifndef WF_SRC_RUNTIME_CORE_HPP
#define WF_SRC_RUNTIME_CORE_HPP

#include "attempt.hpp"
#include "../remote_completion.hpp"

#include <wf/runtime.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/steady_timer.hpp>

#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace wf {

// A workflow this runtime is starting or driving, and the callers waiting for it.
struct runtime::active {
  active(std::string n, std::string i) : name(std::move(n)), input(std::move(i)) {}
  std::string name;
  std::string input;
  bool done = false;
  bool held = false;  // claimed (or created) in the store: its lease is renewed
  outcome out;
  std::exception_ptr error;
  std::vector<boost::asio::any_completion_handler<void()>> waiters;

  // Stopping it from outside (lease lost, shutdown).
  detail::attempt* current = nullptr;  // the attempt running now, if any
  // Cancels what its coroutine waits for (an action, a handler, a backoff).
  // Shared: it must outlive that coroutine, whose end still touches it.
  std::shared_ptr<boost::asio::cancellation_signal> cancel = std::make_shared<boost::asio::cancellation_signal>();
  std::optional<detail::attempt::stop_cause> stop;
  void request_stop(detail::attempt::stop_cause cause);
};

struct runtime::impl : std::enable_shared_from_this<runtime::impl> {
  impl(boost::asio::any_io_executor e, std::shared_ptr<wf::store> s, runtime_options o);
  ~impl();

  boost::asio::any_io_executor ex;
  std::shared_ptr<wf::store> st;
  runtime_options options;
  std::shared_ptr<wf::clock> clock;
  std::function<error_kind(const std::exception_ptr&)> classify;
  std::mt19937_64 rng;
  std::unordered_map<std::string, detail::registration> registry;
  std::unordered_map<std::string, std::shared_ptr<runtime::active>> active;

  // Lease renewal (leases.cpp); the timer lives in the renewing coroutine.
  bool renewing = false;
  boost::asio::steady_timer* renew_timer = nullptr;

  // The poller (poller.cpp).
  bool polling = false;
  boost::asio::steady_timer* poll_timer = nullptr;
  bool wake_pending = false;  // new work announced while the poller was busy
  wall_clock::time_point last_purge{};
  subscription new_work;

  // recover() claims in batches; execute() waits meanwhile.
  int recovering = 0;
  std::vector<boost::asio::any_completion_handler<void()>> recovery_waiters;

  // shutdown()
  bool shutting_down = false;
  std::vector<std::string> stopped;  // stopped by the shutdown: released at its end
  detail::one_handler<void()> drained;  // shutdown waits for `active` to empty

  // When the io_context shuts down before this object goes, what holds its
  // handlers and timers is dropped there (context_shutdown), not later.
  std::shared_ptr<detail::context_state> context;
  std::uint64_t context_hook = 0;
  bool context_gone = false;
  void context_shutdown();

  detail::attempt_env env() { return {ex, *st, *clock, classify, rng, options.observer.get()}; }
  wf::observer* obs() const noexcept { return options.observer.get(); }
  bool is_takeover(const std::string& previous_owner) const {
    return !previous_owner.empty() && previous_owner != options.executor_id;
  }
  /// A claim of `limit` workflows of the names registered here.
  claim_request claims(std::size_t limit) const;

  // runtime.cpp
  std::shared_ptr<runtime::active> begin(const std::string& gid, const std::string& name, const std::string& input);
  void complete(const std::string& gid, const std::shared_ptr<runtime::active>& a, std::optional<outcome> out,
                std::exception_ptr error);
  bool adopt(claim_result& c);
  void check_running() const;  // throws shutdown_error once shutting down

  // driver.cpp
  void start(const detail::registration& reg, std::shared_ptr<runtime::active> a, workflow_state state,
             std::vector<journal_record> journal);
  static boost::asio::awaitable<void> drive(std::shared_ptr<impl> self, const detail::registration& reg,
                                            std::shared_ptr<runtime::active> a, workflow_state state,
                                            std::vector<journal_record> journal);

  // leases.cpp
  void start_renewing();
  static boost::asio::awaitable<void> renew_leases(std::shared_ptr<impl> self);

  // poller.cpp
  void start_polling();
  static boost::asio::awaitable<void> poll(std::shared_ptr<impl> self);
};

namespace detail {
/// A timer that lives in a coroutine's frame, which `where` points to while
/// it does (so that the runtime can cancel it, and never touches it after
/// the frame, and the io_context with it, is gone).
class frame_timer {
 public:
  frame_timer(const boost::asio::any_io_executor& ex, boost::asio::steady_timer*& where) : timer_(ex), where_(where) {
    where_ = &timer_;
  }
  ~frame_timer() { where_ = nullptr; }
  frame_timer(const frame_timer&) = delete;
  frame_timer& operator=(const frame_timer&) = delete;
  boost::asio::steady_timer& operator*() noexcept { return timer_; }
  boost::asio::steady_timer* operator->() noexcept { return &timer_; }

 private:
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer*& where_;
};

/// Waits on `handlers` (a list the caller completes by posting each).
boost::asio::awaitable<void> wait_on(std::vector<boost::asio::any_completion_handler<void()>>& handlers);
/// Posts every handler of `handlers` to `ex` and empties the list.
void wake_all(const boost::asio::any_io_executor& ex, std::vector<boost::asio::any_completion_handler<void()>>& handlers);
}  // namespace detail

}  // namespace wf

#endif  // WF_SRC_RUNTIME_CORE_HPP
