// The barrier for coroutines (see wf/barrier.hpp): business code under the
// barrier on the pool's own threads.
#include "worker.hpp"

#include <wf/barrier.hpp>

#include <atomic>
#include <stdexcept>
#include <vector>

namespace wf {

struct barrier_pool::impl {
  std::string table;
  std::atomic<std::uint64_t> reconnects{0};
  std::vector<std::unique_ptr<detail::pg::worker>> workers;
  std::atomic<std::size_t> next{0};
};

barrier_pool::barrier_pool(options o) : impl_(std::make_unique<impl>()) {
  barrier check({"workflow", "x", "01", "action"}, o.table);  // refuses a bad table name now
  impl_->table = std::move(o.table);
  for (std::size_t i = 0; i < std::max<std::size_t>(1, o.threads); ++i)
    impl_->workers.push_back(std::make_unique<detail::pg::worker>(o.connection, nullptr, impl_->reconnects));
}

barrier_pool::~barrier_pool() = default;

boost::asio::awaitable<bool> barrier_pool::call(barrier_info info, std::function<void(pqxx::work&)> business) {
  auto& w = *impl_->workers[impl_->next++ % impl_->workers.size()];
  auto fn = [info = std::move(info), business = std::move(business), table = impl_->table](pqxx::connection& c) {
    barrier b(info, table);
    return b.call(c, business);
  };
  return detail::pg::on_worker<bool>(w, std::move(fn));
}

}  // namespace wf
