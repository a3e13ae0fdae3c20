// The PostgreSQL store's listener for new work (LISTEN/NOTIFY): one thread,
// one connection, started by the first subscription.
#ifndef WF_SRC_STORE_POSTGRES_LISTENER_HPP
#define WF_SRC_STORE_POSTGRES_LISTENER_HPP

#include <wf/store.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace wf::detail::pg {

class listener {
 public:
  listener(std::string conninfo, std::string channel);
  ~listener();

  /// Calls `cb` (from the listener's thread) after each notification on the
  /// channel, and each time the listener (re)connects (something may have
  /// been announced while it was not listening). Does not wait for the
  /// LISTEN to be in place: until it is, pollers find the work anyway.
  subscription add(std::function<void()> cb);

 private:
  void fire();
  void run();

  struct shared {
    std::mutex mutex;  // held while callbacks run: removing waits for a running one
    std::map<std::uint64_t, std::function<void()>> callbacks;
    std::uint64_t next = 1;
  };

  std::string conninfo_;
  std::string channel_;
  std::shared_ptr<shared> shared_ = std::make_shared<shared>();
  std::atomic<bool> stopping_{false};
  std::once_flag started_;
  std::thread thread_;
};

}  // namespace wf::detail::pg

#endif  // WF_SRC_STORE_POSTGRES_LISTENER_HPP
