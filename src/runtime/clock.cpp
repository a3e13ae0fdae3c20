#include <wf/clock.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace wf {

namespace {
class system_clock_impl final : public clock {
 public:
  wall_clock::time_point now() const override { return wall_clock::now(); }

  boost::asio::awaitable<void> wait_until(wall_clock::time_point t) override {
    const auto left = t - wall_clock::now();
    if (left <= wall_clock::duration::zero()) co_return;
    boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
    timer.expires_after(std::chrono::duration_cast<boost::asio::steady_timer::duration>(left));
    co_await timer.async_wait(boost::asio::use_awaitable);
  }
};
}  // namespace

std::shared_ptr<clock> system_clock() {
  static const auto instance = std::make_shared<system_clock_impl>();
  return instance;
}

}  // namespace wf
