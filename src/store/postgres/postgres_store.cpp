#include "schema.hpp"
#include "statements.hpp"
#include "../../text.hpp"
#include "worker.hpp"

#include <wf/postgres_store.hpp>

#include <pqxx/binarystring>
#include <pqxx/except>
#include <pqxx/notification>
#include <pqxx/result>
#include <pqxx/nontransaction>
#include <pqxx/transaction>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <type_traits>
#include <limits>
#include <map>
#include <set>
#include <thread>

namespace asio = boost::asio;

namespace wf {

namespace pg = detail::pg;

namespace {

// ---- the group-commit writer

write_status apply_write(pqxx::transaction_base& tx, const write& w);

// One creation or one commit() call, waiting for its group's transaction.
struct write_op {
  virtual ~write_op() = default;
  virtual void complete(std::exception_ptr error) = 0;
  std::optional<workflow_state> create;  // a creation, or
  std::vector<write> writes;             // the writes of a commit() call
  create_result created;                 // results, filled in by the writer
  std::vector<write_status> statuses;
};

template <class T, class Handler, class Executor>
struct write_op_model final : write_op {
  write_op_model(Handler h, Executor e) : handler(std::move(h)), ex(std::move(e)) {}
  void complete(std::exception_ptr error) override {
    T value{};
    if (!error) {
      if constexpr (std::is_same_v<T, create_result>)
        value = std::move(created);
      else
        value = std::move(statuses);
    }
    detail::post_back(std::move(ex), std::move(handler), error, std::move(value));
  }
  Handler handler;
  Executor ex;
};

class group_writer {
 public:
  group_writer(const postgres_options& o, pg::session::prepare_fn prepare, std::atomic<std::uint64_t>& reconnects)
      : session_(o.connection, std::move(prepare), reconnects),
        schema_(o.schema),
        max_batch_(std::max<std::size_t>(1, o.max_batch)),
        wait_(o.batch_wait) {
    thread_ = std::thread([this] { run(); });
  }
  ~group_writer() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // Queues a creation (T = create_result) or the writes of a commit() call
  // (T = std::vector<write_status>) for the next group; completes once durable.
  template <class T>
  asio::awaitable<T> submit(std::optional<workflow_state> create, std::vector<write> writes) {
    auto init = [this](auto handler, std::optional<workflow_state> c, std::vector<write> w) {
      auto ex = detail::tracked_executor(handler);
      auto op = std::make_unique<write_op_model<T, decltype(handler), decltype(ex)>>(std::move(handler), std::move(ex));
      op->create = std::move(c);
      op->writes = std::move(w);
      {
        std::lock_guard lock(mutex_);
        queue_.push_back(std::move(op));
      }
      cv_.notify_one();
    };
    return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, T)>(
        std::move(init), asio::use_awaitable, std::move(create), std::move(writes));
  }

  std::uint64_t transactions() const noexcept { return transactions_; }
  std::uint64_t writes() const noexcept { return writes_; }

 private:
  void run() {
    for (;;) {
      std::vector<std::unique_ptr<write_op>> group;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;
        if (wait_.count() > 0 && queue_.size() < max_batch_)
          cv_.wait_for(lock, wait_, [this] { return stopping_ || queue_.size() >= max_batch_; });
        while (!queue_.empty() && group.size() < max_batch_) {
          group.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      commit_group(group);
    }
  }

  // One transaction for the whole group. If the server rejects a statement
  // (nothing was committed), each op is retried alone, so that one bad write
  // cannot keep failing the others. A lost connection or an in-doubt commit
  // fails the whole group: the callers re-read before going on.
  void commit_group(std::vector<std::unique_ptr<write_op>>& group) {
    std::exception_ptr error;
    bool statement_error = false;
    try {
      run_transaction(group.begin(), group.end());
    } catch (const pqxx::sql_error& e) {
      // Waiting for a lock too long (another runner, maybe frozen, holds the
      // row) is the group's condition, not one write's: retrying the writes
      // one by one would only wait again, once per write.
      const std::string state = e.sqlstate();
      statement_error = state != "55P03" && state != "57014";
      error = std::current_exception();
    } catch (const pqxx::broken_connection&) {
      session_.reset();
      error = std::current_exception();
    } catch (...) {
      error = std::current_exception();
    }
    if (statement_error && group.size() > 1) {
      for (auto it = group.begin(); it != group.end(); ++it) {
        std::exception_ptr one;
        try {
          run_transaction(it, it + 1);
        } catch (const pqxx::broken_connection&) {
          session_.reset();
          one = std::current_exception();
        } catch (...) {
          one = std::current_exception();
        }
        (*it)->complete(one);
      }
      return;
    }
    for (auto& op : group) op->complete(error);
  }

  template <class It>
  void run_transaction(It first, It last) {
    auto& c = session_.connection();
    std::vector<write_op*> creates, commits;
    bool notify = false;
    for (auto it = first; it != last; ++it) {
      if ((*it)->create) {
        creates.push_back(it->get());
        notify = notify || (*it)->create->owner.empty();
      } else {
        commits.push_back(it->get());
      }
    }
    const bool duplicates = has_duplicates(commits);
    auto work = [&](pqxx::transaction_base& tx) {
      if (!creates.empty()) create_all(tx, creates);
      if (!commits.empty()) write_all(tx, commits, duplicates);
      if (notify) tx.exec_params("SELECT pg_notify($1, '')", pg::work_channel(schema_));
    };
    if ((creates.empty() || commits.empty()) && !duplicates) {
      // One statement does the group's work and is atomic on its own: run it
      // as its own transaction, one round trip instead of three.
      pqxx::nontransaction tx(c);
      work(tx);
    } else {
      pqxx::work tx(c);
      work(tx);
      tx.commit();
    }
    ++transactions_;
    writes_ += static_cast<std::uint64_t>(last - first);
  }

  // All creations of the group in one statement.
  static void create_all(pqxx::transaction_base& tx, const std::vector<write_op*>& ops) {
    std::vector<std::string> gids, names, inputs, owners, leases, deadlines;
    const auto now = wall_clock::now();
    for (const auto* op : ops) {
      const auto& s = *op->create;
      gids.push_back(s.gid);
      names.push_back(s.name);
      inputs.push_back(pg::bytea_text(s.input));
      owners.push_back(s.owner);
      const auto lease = std::chrono::duration_cast<std::chrono::milliseconds>(s.lease_expires - now).count();
      leases.push_back(std::to_string(std::max<std::int64_t>(0, lease)));
      deadlines.push_back(std::to_string(s.deadline ? pg::to_us(*s.deadline) : -1));
    }
    std::map<std::string, workflow_state> inserted;
    for (const auto& row : tx.exec_prepared("wf_create_all", pg::text_array(gids), pg::text_array(names),
                                            pg::text_array(inputs), pg::text_array(owners), pg::text_array(leases),
                                            pg::text_array(deadlines))) {
      auto st = pg::state_from_row(row);
      inserted.emplace(st.gid, std::move(st));
    }
    std::map<std::string, workflow_state> existing;
    if (inserted.size() < ops.size())
      for (const auto& row : tx.exec_prepared("wf_find_all", pg::text_array(gids))) {
        auto st = pg::state_from_row(row);
        existing.emplace(st.gid, std::move(st));
      }
    for (auto* op : ops) {
      // A gid created twice in one group: the first creation wins.
      auto it = inserted.find(op->create->gid);
      if (it != inserted.end()) {
        op->created = {true, it->second};
        existing.emplace(it->first, it->second);
        inserted.erase(it);
      } else {
        op->created = {false, existing.at(op->create->gid)};
      }
    }
  }

  // All writes of the group in one statement, unless one workflow has more
  // than one write in it (then one by one, in order).
  static bool has_duplicates(const std::vector<write_op*>& ops) {
    std::set<std::string> seen;
    for (const auto* op : ops)
      for (const auto& w : op->writes)
        if (!seen.insert(w.gid).second) return true;
    return false;
  }

  static void write_all(pqxx::transaction_base& tx, const std::vector<write_op*>& ops, bool duplicates) {
    if (duplicates) {
      for (auto* op : ops) {
        op->statuses.clear();
        for (const auto& w : op->writes) op->statuses.push_back(apply_write(tx, w));
      }
      return;
    }
    pg::batch b;
    std::set<std::string> malformed;
    for (const auto* op : ops)
      for (const auto& w : op->writes)
        if (!b.add(w)) malformed.insert(w.gid);
    std::set<std::string> applied;
    if (!b.empty())
      for (const auto& row : b.execute(tx)) applied.insert(row[0].as<std::string>());
    for (auto* op : ops) {
      op->statuses.clear();
      for (const auto& w : op->writes) {
        if (malformed.count(w.gid)) {
          op->statuses.push_back(write_status::conflict);
        } else if (applied.count(w.gid)) {
          op->statuses.push_back(write_status::ok);
        } else {
          auto e = tx.exec_prepared("wf_fence", w.gid);
          const bool fenced = e.empty() || e[0][0].as<std::uint64_t>() != w.epoch;
          op->statuses.push_back(fenced ? write_status::fenced : write_status::conflict);
        }
      }
    }
  }

  pg::session session_;
  std::string schema_;
  std::size_t max_batch_;
  std::chrono::microseconds wait_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<write_op>> queue_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> transactions_{0};
  std::atomic<std::uint64_t> writes_{0};
  std::thread thread_;
};

// ---- the listener for new work

class listener {
 public:
  listener(std::string conninfo, std::string channel) : conninfo_(std::move(conninfo)), channel_(std::move(channel)) {}
  ~listener() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
  }
  // The first registration starts listening and waits (a few seconds at most)
  // until the LISTEN is in place, so that no notification sent after it
  // returns is missed. If the database is down, polling covers for it.
  void add(std::function<void()> cb) {
    std::unique_lock lock(mutex_);
    callbacks_.push_back(std::move(cb));
    if (thread_.joinable()) return;
    thread_ = std::thread([this] { run(); });
    listening_cv_.wait_for(lock, std::chrono::seconds(5), [this] { return listening_; });
  }

 private:
  struct receiver final : pqxx::notification_receiver {
    receiver(pqxx::connection_base& c, const std::string& channel, listener& l)
        : pqxx::notification_receiver(c, channel), owner(l) {}
    void operator()(const std::string&, int) override { owner.fire(); }
    listener& owner;
  };
  void fire() {
    std::lock_guard lock(mutex_);
    for (const auto& cb : callbacks_) cb();
  }
  void run() {
    while (!stopping_) {
      try {
        auto c = pg::connect(conninfo_);
        receiver r(*c, channel_, *this);
        {
          std::lock_guard lock(mutex_);
          listening_ = true;
        }
        listening_cv_.notify_all();
        fire();  // (re)connected: something may have been missed meanwhile
        while (!stopping_) c->await_notification(0, 200000);
      } catch (const std::exception&) {
        // Database unreachable: runners still poll; try again shortly.
        for (int i = 0; i < 10 && !stopping_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }

  std::string conninfo_;
  std::string channel_;
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::condition_variable listening_cv_;
  bool listening_ = false;
  std::vector<std::function<void()>> callbacks_;
  std::thread thread_;
};

std::int64_t sql_limit(std::size_t limit) {
  return static_cast<std::int64_t>(std::min<std::size_t>(limit, std::numeric_limits<std::int64_t>::max()));
}

claim_status classify_unclaimed(pqxx::work& tx, const std::string& gid, claim_result& r) {
  auto found = tx.exec_prepared("wf_find", gid);
  if (found.empty()) return claim_status::not_found;
  r.state = pg::state_from_row(found[0]);
  return r.state.finished() ? claim_status::finished : claim_status::busy;
}

std::vector<journal_record> read_journal(pqxx::transaction_base& tx, const std::string& gid) {
  std::vector<journal_record> out;
  for (const auto& row : tx.exec_prepared("wf_journal", gid)) out.push_back(pg::record_from_row(row));
  return out;
}

write_status apply_write(pqxx::transaction_base& tx, const write& w) {
  const auto n = static_cast<int>(w.records.size());
  const auto before = pg::size_before(w);
  if (!before) return write_status::conflict;
  const auto size_before = static_cast<int>(*before);
  pqxx::result r;
  if (w.new_progress) {
    const auto& p = *w.new_progress;
    r = tx.exec_prepared("wf_append_progress", w.gid, w.epoch, n, size_before, static_cast<int>(p.status),
                         pqxx::binarystring(p.result), p.attempts, detail::storable_text(p.last_error), pg::to_us(p.next_attempt_at));
  } else {
    r = tx.exec_prepared("wf_append", w.gid, w.epoch, n, size_before);
  }
  if (r.affected_rows() == 0) {
    auto e = tx.exec_prepared("wf_fence", w.gid);
    if (e.empty() || e[0][0].as<std::uint64_t>() != w.epoch) return write_status::fenced;
    return write_status::conflict;
  }
  for (const auto& rec : w.records)
    tx.exec_prepared("wf_record", w.gid, rec.seq, static_cast<int>(rec.kind), rec.name, rec.branch, rec.failed,
                     pqxx::binarystring(rec.payload), w.epoch);
  return write_status::ok;
}

}  // namespace

struct postgres_store::impl {
  std::atomic<std::uint64_t> reconnects{0};
  std::unique_ptr<group_writer> writer;
  std::unique_ptr<pg::worker> reader;
  std::unique_ptr<listener> notifications;
};

int migrate_postgres_schema(const postgres_options& options) {
  const auto schema = pg::checked_schema(options.schema);
  auto c = pg::connect(options.connection);
  try {
    return pg::migrate(*c, schema);
  } catch (const postgres_error&) {
    throw;
  } catch (const std::exception& e) {
    throw postgres_error(std::string("wf: migrating schema '") + schema + "' failed: " + e.what());
  }
}

std::shared_ptr<postgres_store> postgres_store::open(postgres_options options) {
  options.schema = pg::checked_schema(options.schema);
  const auto give_up = std::chrono::steady_clock::now() + options.wait_for_database;
  for (;;) {
    try {
      migrate_postgres_schema(options);
      break;
    } catch (const schema_too_new_error&) {
      throw;
    } catch (const postgres_error&) {
      if (std::chrono::steady_clock::now() >= give_up) throw;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }
  auto p = std::make_unique<impl>();
  auto prepare = [o = options](pqxx::connection& c) {
    pg::prepare_session(c, o.schema, o.idle_transaction_timeout, o.lock_timeout);
  };
  p->writer = std::make_unique<group_writer>(options, prepare, p->reconnects);
  p->reader = std::make_unique<pg::worker>(options.connection, prepare, p->reconnects);
  p->notifications = std::make_unique<listener>(options.connection, pg::work_channel(options.schema));
  return std::shared_ptr<postgres_store>(new postgres_store(std::move(p)));
}

postgres_store::postgres_store(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
postgres_store::~postgres_store() = default;

postgres_store::statistics postgres_store::stats() const {
  return {impl_->writer->transactions(), impl_->writer->writes(), impl_->reconnects.load()};
}

void postgres_store::on_new_work(std::function<void()> callback) { impl_->notifications->add(std::move(callback)); }

// Each operation below builds its function in a statement of its own, then
// co_awaits: GCC 12 mishandles capturing lambdas inside co_await expressions.

asio::awaitable<create_result> postgres_store::create(workflow_state s) {
  co_return co_await impl_->writer->submit<create_result>(std::move(s), {});
}

asio::awaitable<std::vector<write_status>> postgres_store::commit(std::vector<write> writes) {
  co_return co_await impl_->writer->submit<std::vector<write_status>>(std::nullopt, std::move(writes));
}

asio::awaitable<claim_result> postgres_store::claim(std::string gid, std::string owner,
                                                    std::chrono::milliseconds lease) {
  auto fn = [gid = std::move(gid), owner = std::move(owner), lease](pqxx::connection& c) {
    pqxx::work tx(c);
    claim_result r;
    auto rows = tx.exec_prepared("wf_claim", gid, owner, lease.count());
    if (rows.empty()) {
      r.status = classify_unclaimed(tx, gid, r);
    } else {
      r.status = claim_status::claimed;
      r.state = pg::state_from_row(rows[0]);
      r.journal = read_journal(tx, gid);
    }
    tx.commit();
    return r;
  };
  co_return co_await pg::on_worker<claim_result>(*impl_->reader, std::move(fn));
}

namespace {
// Claims the workflows `statement` (wf_claim_due or wf_claim_resumable) picks,
// and reads all their journals in one more query.
std::vector<claim_result> claim_many(pqxx::work& tx, const char* statement, const std::string& owner,
                                     std::chrono::milliseconds lease, std::size_t limit) {
  std::vector<claim_result> out;
  std::map<std::string, std::size_t> index;
  std::vector<std::string> gids;
  for (const auto& row : tx.exec_prepared(statement, owner, lease.count(), sql_limit(limit))) {
    claim_result r;
    r.status = claim_status::claimed;
    r.state = pg::state_from_row(row);
    index[r.state.gid] = out.size();
    gids.push_back(r.state.gid);
    out.push_back(std::move(r));
  }
  if (!gids.empty())
    for (const auto& row : tx.exec_prepared("wf_journals", pg::text_array(gids)))
      out[index.at(row[6].as<std::string>())].journal.push_back(pg::record_from_row(row));
  return out;
}

// One claim statement, with the journals of what it claimed, in one transaction on the worker.
asio::awaitable<std::vector<claim_result>> claim_on(pg::worker& reader, const char* statement, std::string owner,
                                                    std::chrono::milliseconds lease, std::size_t limit) {
  auto fn = [statement, owner = std::move(owner), lease, limit](pqxx::connection& c) {
    pqxx::work tx(c);
    auto out = claim_many(tx, statement, owner, lease, limit);
    tx.commit();
    return out;
  };
  co_return co_await pg::on_worker<std::vector<claim_result>>(reader, std::move(fn));
}
}  // namespace

asio::awaitable<std::vector<claim_result>> postgres_store::claim_due(std::string owner,
                                                                     std::chrono::milliseconds lease,
                                                                     std::size_t limit) {
  return claim_on(*impl_->reader, "wf_claim_due", std::move(owner), lease, limit);
}

asio::awaitable<std::vector<claim_result>> postgres_store::claim_resumable(std::string owner,
                                                                           std::chrono::milliseconds lease,
                                                                           std::size_t limit) {
  return claim_on(*impl_->reader, "wf_claim_resumable", std::move(owner), lease, limit);
}

asio::awaitable<std::vector<std::string>> postgres_store::renew(std::string owner, std::vector<std::string> gids,
                                                                std::chrono::milliseconds lease) {
  auto fn = [owner = std::move(owner), gids = std::move(gids), lease](pqxx::connection& c) {
    pqxx::nontransaction tx(c);  // one statement: atomic on its own, one round trip
    std::set<std::string> kept;
    for (const auto& row : tx.exec_prepared("wf_renew", owner, pg::text_array(gids), lease.count()))
      kept.insert(row[0].as<std::string>());
    std::vector<std::string> lost;
    for (const auto& g : gids)
      if (!kept.count(g)) lost.push_back(g);
    return lost;
  };
  co_return co_await pg::on_worker<std::vector<std::string>>(*impl_->reader, std::move(fn));
}

asio::awaitable<std::optional<workflow_state>> postgres_store::find(std::string gid) {
  auto fn = [gid = std::move(gid)](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    auto rows = tx.exec_prepared("wf_find", gid);
    return rows.empty() ? std::optional<workflow_state>() : std::optional(pg::state_from_row(rows[0]));
  };
  co_return co_await pg::on_worker<std::optional<workflow_state>>(*impl_->reader, std::move(fn));
}

asio::awaitable<std::vector<journal_record>> postgres_store::journal(std::string gid) {
  auto fn = [gid = std::move(gid)](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    return read_journal(tx, gid);
  };
  co_return co_await pg::on_worker<std::vector<journal_record>>(*impl_->reader, std::move(fn));
}

asio::awaitable<std::vector<workflow_state>> postgres_store::runnable(std::string owner, std::size_t limit) {
  auto fn = [owner = std::move(owner), limit](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    std::vector<workflow_state> out;
    for (const auto& row : tx.exec_prepared("wf_runnable", owner, sql_limit(limit)))
      out.push_back(pg::state_from_row(row));
    return out;
  };
  co_return co_await pg::on_worker<std::vector<workflow_state>>(*impl_->reader, std::move(fn));
}

asio::awaitable<std::size_t> postgres_store::purge(wall_clock::time_point before) {
  auto fn = [before](pqxx::connection& c) {
    std::size_t total = 0;
    for (;;) {  // in chunks, so that no statement holds many locks for long
      pqxx::nontransaction tx(c);  // each chunk is one statement, atomic on its own
      const auto n = tx.exec_prepared("wf_purge", pg::to_us(before)).affected_rows();
      total += n;
      if (n == 0) return total;
    }
  };
  co_return co_await pg::on_worker<std::size_t>(*impl_->reader, std::move(fn));
}

}  // namespace wf
