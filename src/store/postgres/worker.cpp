#include "worker.hpp"

#include <wf/postgres_store.hpp>

#include <libpq-fe.h>

namespace wf::detail::pg {

namespace {
// libpq's messages name host, port and user; this makes sure that, whatever
// they say, the password is not in them.
std::string scrubbed(std::string message, const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (!opts) {
    if (err) PQfreemem(err);
    return "the connection string could not be parsed";
  }
  for (auto* o = opts; o->keyword; ++o) {
    if (std::string(o->keyword) != "password" || !o->val || !*o->val) continue;
    const std::string pw = o->val;
    for (auto pos = message.find(pw); pos != std::string::npos; pos = message.find(pw))
      message.replace(pos, pw.size(), "********");
  }
  PQconninfoFree(opts);
  return message;
}
}  // namespace

std::unique_ptr<pqxx::connection> connect(const std::string& conninfo) {
  try {
    return std::make_unique<pqxx::connection>(conninfo);
  } catch (const std::exception& e) {
    throw postgres_error("wf: cannot connect to PostgreSQL: " + scrubbed(e.what(), conninfo));
  }
}

session::session(std::string conninfo, prepare_fn prepare, std::atomic<std::uint64_t>& reconnects)
    : conninfo_(std::move(conninfo)), prepare_(std::move(prepare)), reconnects_(reconnects) {}

pqxx::connection& session::connection() {
  if (conn_ && conn_->is_open()) return *conn_;
  if (conn_ || lost_) ++reconnects_;
  lost_ = false;
  conn_.reset();
  auto c = connect(conninfo_);
  if (prepare_) prepare_(*c);
  conn_ = std::move(c);
  return *conn_;
}

void session::reset() noexcept {
  conn_.reset();
  lost_ = true;
}

worker::worker(std::string conninfo, prepare_fn prepare, std::atomic<std::uint64_t>& reconnects)
    : session_(std::move(conninfo), std::move(prepare), reconnects) {
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
