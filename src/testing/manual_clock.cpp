#include <wf/testing.hpp>

#include "../remote_completion.hpp"

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <map>

namespace asio = boost::asio;

namespace wf::testing {

struct manual_clock::state {
  mutable std::mutex mutex;
  wall_clock::time_point now;
  std::uint64_t next_id = 1;
  struct waiter {
    wall_clock::time_point due;
    wf::detail::remote_completion<boost::system::error_code> done;
  };
  std::map<std::uint64_t, waiter> waiters;

  // Completes the waits due at `now` (outside the lock: a completion posts).
  void fire() {
    std::vector<wf::detail::remote_completion<boost::system::error_code>> due;
    {
      std::lock_guard lock(mutex);
      for (auto it = waiters.begin(); it != waiters.end();) {
        if (it->second.due <= now) {
          due.push_back(std::move(it->second.done));
          it = waiters.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& d : due) d.complete(boost::system::error_code());
  }
};

manual_clock::manual_clock(wall_clock::time_point start) : state_(std::make_shared<state>()) { state_->now = start; }

manual_clock::~manual_clock() = default;

wall_clock::time_point manual_clock::now() const {
  std::lock_guard lock(state_->mutex);
  return state_->now;
}

asio::awaitable<void> manual_clock::wait_until(wall_clock::time_point t) {
  auto init = [st = state_, t](auto handler) {
    auto slot = asio::get_associated_cancellation_slot(handler);
    std::uint64_t id;
    {
      std::lock_guard lock(st->mutex);
      id = st->next_id++;
      st->waiters.emplace(id, state::waiter{t, wf::detail::remote_completion<boost::system::error_code>(std::move(handler))});
    }
    if (slot.is_connected())
      slot.assign([st, id](asio::cancellation_type) {
        wf::detail::remote_completion<boost::system::error_code> done;
        {
          std::lock_guard lock(st->mutex);
          auto it = st->waiters.find(id);
          if (it == st->waiters.end()) return;
          done = std::move(it->second.done);
          st->waiters.erase(it);
        }
        done.complete(asio::error::operation_aborted);
      });
    st->fire();  // due already
  };
  co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(boost::system::error_code)>(init,
                                                                                                  asio::use_awaitable);
}

void manual_clock::advance(wall_clock::duration d) {
  {
    std::lock_guard lock(state_->mutex);
    state_->now += d;
  }
  state_->fire();
}

void manual_clock::set(wall_clock::time_point t) {
  {
    std::lock_guard lock(state_->mutex);
    if (t > state_->now) state_->now = t;
  }
  state_->fire();
}

std::size_t manual_clock::waiting() const {
  std::lock_guard lock(state_->mutex);
  return state_->waiters.size();
}

}  // namespace wf::testing
