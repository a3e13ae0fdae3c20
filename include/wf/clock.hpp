// wf/clock.hpp - where the runtime reads the time and waits for it.
//
// The runtime (retry backoff, deadlines, timestamps it stores) and the
// memory store (leases, due times) read the time through a `wf::clock`. In
// production that is `wf::system_clock()`; a test passes a
// `wf::testing::manual_clock` (wf/testing.hpp) and moves time forward itself,
// so that backoffs and deadlines are tested without sleeping:
//
//     auto clock = std::make_shared<wf::testing::manual_clock>();
//     auto store = std::make_shared<wf::memory_store>(clock);
//     wf::runtime rt(io.get_executor(), store, {.clock = clock});
//     ...
//     clock->advance(std::chrono::minutes(5));   // due waits complete now
//
// Thread-safety: a clock may be used from any thread.
#ifndef WF_CLOCK_HPP
#define WF_CLOCK_HPP

#include <wf/journal.hpp>

#include <boost/asio/awaitable.hpp>

#include <memory>

namespace wf {

class clock {
 public:
  virtual ~clock() = default;

  /// The current time.
  virtual wall_clock::time_point now() const = 0;

  /// Completes at `t` or later (at once if `t` has passed), on the awaiting
  /// coroutine's executor. Terminal cancellation of the awaiting operation
  /// ends the wait early with `boost::asio::error::operation_aborted`.
  virtual boost::asio::awaitable<void> wait_until(wall_clock::time_point t) = 0;
};

/// The system's clock (`std::chrono::system_clock`); waits use a steady
/// timer, so a change of the wall clock does not stretch or shorten them.
std::shared_ptr<clock> system_clock();

}  // namespace wf

#endif  // WF_CLOCK_HPP
