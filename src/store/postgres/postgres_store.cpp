#include "group_writer.hpp"
#include "listener.hpp"
#include "schema.hpp"
#include "statements.hpp"
#include "worker.hpp"
#include "../store_checks.hpp"

#include <wf/postgres_store.hpp>

#include <pqxx/binarystring>
#include <pqxx/except>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <pqxx/transaction>

#include <chrono>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>

namespace asio = boost::asio;

namespace wf {

namespace pg = detail::pg;

namespace {

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
  for (const auto& row : tx.exec_prepared("wf_journal", gid)) pg::append_records(row, out);
  return out;
}

}  // namespace

struct postgres_store::impl {
  std::atomic<std::uint64_t> reconnects{0};
  std::string schema;
  std::unique_ptr<pg::group_writer> writer;
  std::unique_ptr<pg::worker> reader;
  std::unique_ptr<pg::worker> leases;
  std::unique_ptr<pg::listener> notifications;
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

namespace {
// A schema at another version with migrate = false: not retried.
struct schema_mismatch : std::runtime_error {
  using std::runtime_error::runtime_error;
};
}  // namespace

std::shared_ptr<postgres_store> postgres_store::open(postgres_options options) {
  options.schema = pg::checked_schema(options.schema);
  const auto give_up = std::chrono::steady_clock::now() + options.wait_for_database;
  for (;;) {
    try {
      if (options.migrate) {
        migrate_postgres_schema(options);
      } else {
        int found = 0;
        try {
          auto c = pg::connect(options.connection);
          found = pg::current_version(*c, options.schema);
        } catch (const postgres_error&) {
          throw;
        } catch (const std::exception& e) {
          throw postgres_error("wf: reading the version of schema '" + options.schema + "' failed: " + e.what());
        }
        if (found != postgres_schema_version)
          throw schema_mismatch("wf: schema '" + options.schema + "' is at version " + std::to_string(found) +
                                ", not this library's " + std::to_string(postgres_schema_version) +
                                ", and postgres_options::migrate is false (it is left as it is)");
      }
      break;
    } catch (const schema_mismatch& e) {
      throw postgres_error(e.what());
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
  p->schema = options.schema;
  p->writer = std::make_unique<pg::group_writer>(options, prepare, p->reconnects);
  p->reader = std::make_unique<pg::worker>(options.connection, prepare, p->reconnects);
  p->leases = std::make_unique<pg::worker>(options.connection, prepare, p->reconnects);
  p->notifications = std::make_unique<pg::listener>(options.connection, pg::work_channel(options.schema));
  return std::shared_ptr<postgres_store>(new postgres_store(std::move(p)));
}

postgres_store::postgres_store(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
postgres_store::~postgres_store() = default;

postgres_store::statistics postgres_store::stats() const {
  return {impl_->writer->transactions(), impl_->writer->writes(), impl_->reconnects.load()};
}

subscription postgres_store::on_new_work(std::function<void()> callback) {
  return impl_->notifications->add(std::move(callback));
}

// Each operation below builds its function in a statement of its own, then
// co_awaits: GCC 12 mishandles capturing lambdas inside co_await expressions.

asio::awaitable<create_result> postgres_store::create(workflow_state s) {
  co_return co_await impl_->writer->submit<create_result>(std::move(s), {});
}

asio::awaitable<std::vector<write_status>> postgres_store::commit(std::vector<write> writes) {
  detail::check_messages(writes, "wf::postgres_store");
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
      r.previous_owner = rows[0][14].as<std::string>();
      r.journal = read_journal(tx, gid);
    }
    tx.commit();
    return r;
  };
  co_return co_await pg::on_worker<claim_result>(*impl_->reader, std::move(fn));
}

namespace {
// Claims the workflows a claim statement picks (`picked` are its rows), and
// reads all their journals in one more query.
std::vector<claim_result> with_journals(pqxx::work& tx, const pqxx::result& picked) {
  std::vector<claim_result> out;
  std::map<std::string, std::size_t> index;
  std::vector<std::string> gids;
  for (const auto& row : picked) {
    claim_result r;
    r.status = claim_status::claimed;
    r.state = pg::state_from_row(row);
    r.previous_owner = row[14].as<std::string>();
    index[r.state.gid] = out.size();
    gids.push_back(r.state.gid);
    out.push_back(std::move(r));
  }
  if (!gids.empty())
    for (const auto& row : tx.exec_prepared("wf_journals", pg::text_array(gids)))
      pg::append_records(row, out[index.at(row[pg::record_column_count].as<std::string>())].journal);
  return out;
}
}  // namespace

asio::awaitable<std::vector<claim_result>> postgres_store::claim_due(claim_request request) {
  auto fn = [r = std::move(request)](pqxx::connection& c) {
    pqxx::work tx(c);
    auto picked = tx.exec_prepared("wf_claim_due", r.owner, r.lease.count(), sql_limit(r.limit),
                                   pg::text_array(r.names), r.names.empty());
    auto out = with_journals(tx, picked);
    tx.commit();
    return out;
  };
  co_return co_await pg::on_worker<std::vector<claim_result>>(*impl_->reader, std::move(fn));
}

asio::awaitable<std::vector<claim_result>> postgres_store::claim_resumable(claim_request request) {
  auto fn = [r = std::move(request)](pqxx::connection& c) {
    pqxx::work tx(c);
    auto picked = tx.exec_prepared("wf_claim_resumable", r.owner, r.lease.count(), sql_limit(r.limit),
                                   pg::text_array(r.names), r.names.empty(), r.after, pg::text_array(r.exclude));
    auto out = with_journals(tx, picked);
    tx.commit();
    return out;
  };
  co_return co_await pg::on_worker<std::vector<claim_result>>(*impl_->reader, std::move(fn));
}

asio::awaitable<std::vector<std::string>> postgres_store::renew(std::string owner, std::vector<std::string> gids,
                                                                std::chrono::milliseconds lease) {
  auto fn = [owner = std::move(owner), gids = std::move(gids), lease](pqxx::connection& c) {
    // Each statement its own transaction. The rows a group write holds now
    // are skipped by the first and renewed one by one after it, waiting for
    // the write but holding nothing else meanwhile (no lock cycle).
    pqxx::nontransaction tx(c);
    std::set<std::string> kept;
    for (const auto& row : tx.exec_prepared("wf_renew", owner, pg::text_array(gids), lease.count()))
      kept.insert(row[0].as<std::string>());
    std::vector<std::string> lost;
    for (const auto& g : gids)
      if (!kept.count(g) && tx.exec_prepared("wf_renew_one", owner, g, lease.count()).empty()) lost.push_back(g);
    return lost;
  };
  co_return co_await pg::on_worker<std::vector<std::string>>(*impl_->leases, std::move(fn));
}

asio::awaitable<void> postgres_store::release(std::string owner, std::vector<std::string> gids) {
  auto fn = [owner = std::move(owner), gids = std::move(gids), channel = pg::work_channel(impl_->schema)](
                pqxx::connection& c) {
    // As renew(): the rows a group write holds now are released one by one
    // after the others, each statement its own transaction.
    pqxx::nontransaction tx(c);
    std::set<std::string> released;
    for (const auto& row : tx.exec_prepared("wf_release", owner, pg::text_array(gids)))
      released.insert(row[0].as<std::string>());
    bool any = !released.empty();
    for (const auto& g : gids)
      if (!released.count(g) && !tx.exec_prepared("wf_release_one", owner, g).empty()) any = true;
    if (any) tx.exec_params("SELECT pg_notify($1, '')", channel);
    return true;
  };
  co_await pg::on_worker<bool>(*impl_->leases, std::move(fn));
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

asio::awaitable<workflow_page> postgres_store::list(workflow_query query) {
  detail::check_query(query, "wf::postgres_store");
  auto fn = [q = std::move(query), schema = impl_->schema](pqxx::connection& c) {
    pqxx::work tx(c);  // the page and the count see one snapshot only in REPEATABLE READ; a count is a figure
    workflow_page page;
    std::vector<std::string> params;
    const auto select = pg::list_sql(schema, q, false, params);
    for (const auto& row : tx.exec_params(select, pqxx::prepare::make_dynamic_params(params)))
      page.workflows.push_back(pg::state_from_row(row));
    if (page.workflows.size() > q.limit) {
      page.workflows.pop_back();
      page.next = page.workflows.back().gid;
    }
    if (q.count) {
      const auto counting = pg::list_sql(schema, q, true, params);
      page.total = tx.exec_params(counting, pqxx::prepare::make_dynamic_params(params))[0][0].as<std::uint64_t>();
    }
    tx.commit();
    return page;
  };
  co_return co_await pg::on_worker<workflow_page>(*impl_->reader, std::move(fn));
}

asio::awaitable<std::size_t> postgres_store::purge(wall_clock::time_point before, std::size_t limit) {
  auto fn = [before, limit](pqxx::connection& c) {
    pqxx::nontransaction tx(c);  // one statement, atomic on its own
    return tx.exec_prepared("wf_purge", pg::to_us(before), sql_limit(limit))[0][0].as<std::size_t>();
  };
  co_return co_await pg::on_worker<std::size_t>(*impl_->reader, std::move(fn));
}

asio::awaitable<bool> postgres_store::resume(std::string gid) {
  auto fn = [gid = std::move(gid), channel = pg::work_channel(impl_->schema)](pqxx::connection& c) {
    pqxx::work tx(c);
    const bool resumed = tx.exec_prepared("wf_resume", gid).affected_rows() > 0;
    if (resumed) tx.exec_params("SELECT pg_notify($1, '')", channel);
    tx.commit();
    return resumed;
  };
  co_return co_await pg::on_worker<bool>(*impl_->reader, std::move(fn));
}

asio::awaitable<send_status> postgres_store::send(message m, bool to_missing) {
  detail::check_message(m, "wf::postgres_store");
  auto fn = [m = std::move(m), to_missing, channel = pg::work_channel(impl_->schema)](pqxx::connection& c) {
    pqxx::work tx(c);
    // A repeated send stays a no-op once the workflow finished, so the key first.
    if (!tx.exec_prepared("wf_message_sent", m.gid, m.key).empty()) return send_status::duplicate;
    // Locked until the commit: the workflow cannot finish in between.
    const auto target = tx.exec_prepared("wf_message_target", m.gid);
    if (target.empty() && !to_missing) return send_status::unknown;
    if (!target.empty() && target[0][0].as<int>() != 0) return send_status::finished;
    const auto r = tx.exec_prepared("wf_deliver", m.gid, m.topic, pqxx::binarystring(m.payload), m.key);
    if (r[0][0].as<int>() == 0) return send_status::duplicate;  // sent meanwhile by another caller
    if (r[0][1].as<int>() > 0) tx.exec_params("SELECT pg_notify($1, '')", channel);
    tx.commit();
    return send_status::delivered;
  };
  co_return co_await pg::on_worker<send_status>(*impl_->reader, std::move(fn));
}

asio::awaitable<std::vector<inbox_message>> postgres_store::inbox(std::string gid, std::string topic,
                                                                 std::size_t limit) {
  auto fn = [gid = std::move(gid), topic = std::move(topic), limit](pqxx::connection& c) {
    pqxx::nontransaction tx(c);
    std::vector<inbox_message> out;
    for (const auto& row : tx.exec_prepared("wf_inbox", gid, topic, sql_limit(limit)))
      out.push_back({row[0].as<std::uint64_t>(), row[1].as<std::string>(), pqxx::binarystring(row[2]).str(),
                     row[3].as<std::string>(), pg::from_us(row[4].as<std::int64_t>())});
    return out;
  };
  co_return co_await pg::on_worker<std::vector<inbox_message>>(*impl_->reader, std::move(fn));
}

}  // namespace wf
