#include "listener.hpp"

#include "worker.hpp"

#include <pqxx/notification>

#include <chrono>

namespace wf::detail::pg {

listener::listener(std::string conninfo, std::string channel)
    : conninfo_(std::move(conninfo)), channel_(std::move(channel)) {}

listener::~listener() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

subscription listener::add(std::function<void()> cb) {
  std::uint64_t id;
  {
    std::lock_guard lock(shared_->mutex);
    id = shared_->next++;
    shared_->callbacks.emplace(id, std::move(cb));
  }
  std::call_once(started_, [this] { thread_ = std::thread([this] { run(); }); });
  // The subscription may outlive the listener (a runtime holding it after
  // its store is gone): it holds only the shared callback table.
  return subscription([s = shared_, id] {
    std::lock_guard lock(s->mutex);
    s->callbacks.erase(id);
  });
}

void listener::fire() {
  std::lock_guard lock(shared_->mutex);
  for (const auto& [id, cb] : shared_->callbacks) cb();
}

namespace {
struct receiver final : pqxx::notification_receiver {
  receiver(pqxx::connection_base& c, const std::string& channel, std::function<void()> on)
      : pqxx::notification_receiver(c, channel), on_notify(std::move(on)) {}
  void operator()(const std::string&, int) override { on_notify(); }
  std::function<void()> on_notify;
};
}  // namespace

void listener::run() {
  while (!stopping_) {
    try {
      auto c = connect(conninfo_);
      receiver r(*c, channel_, [this] { fire(); });
      fire();  // (re)connected: something may have been announced meanwhile
      while (!stopping_) c->await_notification(0, 200000);
    } catch (const std::exception&) {
      // Database unreachable: runners still poll; try again shortly.
      for (int i = 0; i < 10 && !stopping_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

}  // namespace wf::detail::pg
