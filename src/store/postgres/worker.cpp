#include "worker.hpp"

#include <wf/postgres_store.hpp>

namespace wf::detail::pg {

std::unique_ptr<pqxx::connection> connect(const std::string& conninfo) {
  try {
    return std::make_unique<pqxx::connection>(conninfo);
  } catch (const pqxx::broken_connection& e) {
    // libpq's message names host, port and user, never the password.
    throw postgres_error(std::string("wf: cannot connect to PostgreSQL: ") + e.what());
  } catch (const std::invalid_argument& e) {
    throw postgres_error(std::string("wf: bad PostgreSQL connection string: ") + e.what());
  } catch (const pqxx::failure& e) {
    throw postgres_error(std::string("wf: cannot connect to PostgreSQL: ") + e.what());
  }
}

worker::worker(std::string conninfo, prepare_fn prepare, std::atomic<std::uint64_t>& reconnects)
    : conninfo_(std::move(conninfo)), prepare_(std::move(prepare)), reconnects_(reconnects) {
  thread_ = std::thread([this] { run(); });
}

worker::~worker() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void worker::submit(job j) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(j));
  }
  cv_.notify_one();
}

pqxx::connection& worker::connection() {
  if (conn_ && conn_->is_open()) return *conn_;
  if (conn_) ++reconnects_;
  conn_.reset();
  auto c = connect(conninfo_);
  if (prepare_) prepare_(*c);
  conn_ = std::move(c);
  return *conn_;
}

void worker::reset() noexcept { conn_.reset(); }

void worker::run() {
  for (;;) {
    job j;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      // Jobs still queued at shutdown are dropped: their awaiting coroutines
      // belong to io_contexts that are being torn down too.
      if (stopping_) return;
      j = std::move(queue_.front());
      queue_.pop_front();
    }
    j();
  }
}

}  // namespace wf::detail::pg
