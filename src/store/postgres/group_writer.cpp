// The group-commit writer (see group_writer.hpp).
#include "group_writer.hpp"

#include "statements.hpp"
#include "../../text.hpp"

#include <pqxx/binarystring>
#include <pqxx/except>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <pqxx/transaction>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

namespace wf::detail::pg {

namespace {

// Inserts the workflows whose gid is new (one statement); returns the rows
// inserted. `gids` gets the gids asked for.
template <class States>
pqxx::result insert_states(pqxx::transaction_base& tx, const States& states, array_text& gids) {
  array_text names, inputs, owners, leases, deadlines;
  const auto now = wall_clock::now();
  for (const workflow_state& s : states) {
    gids.add(s.gid);
    names.add(s.name);
    inputs.add_bytea(s.input);
    owners.add(s.owner);
    const auto lease = std::chrono::duration_cast<std::chrono::milliseconds>(s.lease_expires - now).count();
    leases.add(static_cast<std::uint64_t>(std::max<std::int64_t>(0, lease)));
    deadlines.add(std::to_string(s.deadline ? to_us(*s.deadline) : -1));
  }
  return tx.exec_prepared("wf_create_all", gids.str(), names.str(), inputs.str(), owners.str(), leases.str(),
                          deadlines.str());
}

// All creations of the group in one statement.
void create_all(pqxx::transaction_base& tx, const std::vector<write_op*>& ops) {
  std::vector<std::reference_wrapper<const workflow_state>> states;
  for (const auto* op : ops) states.push_back(std::cref(*op->create));
  array_text gids;
  std::map<std::string, workflow_state> inserted;
  for (const auto& row : insert_states(tx, states, gids)) {
    auto st = state_from_row(row);
    inserted.emplace(st.gid, std::move(st));
  }
  std::map<std::string, workflow_state> existing;
  if (inserted.size() < ops.size())
    for (const auto& row : tx.exec_prepared("wf_find_all", gids.str())) {
      auto st = state_from_row(row);
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
bool has_duplicates(const std::vector<write_op*>& ops) {
  std::set<std::string> seen;
  for (const auto* op : ops)
    for (const auto& w : op->writes)
      if (!seen.insert(w.gid).second) return true;
  return false;
}

// What an applied write does beyond its own workflow's row and journal: the
// workflows it creates, the messages it consumes and delivers, its release
// until a wake-up time (last: the delivery to itself must not wake it).
void apply_effects(pqxx::transaction_base& tx, const write& w) {
  if (!w.creates.empty()) {
    array_text gids;
    insert_states(tx, w.creates, gids);
  }
  if (!w.consumes.empty()) {
    array_text ids;
    for (const auto id : w.consumes) ids.add(id);
    tx.exec_prepared("wf_consume", w.gid, ids.str());
  }
  for (const auto& m : w.sends) tx.exec_prepared("wf_deliver", m.gid, m.topic, pqxx::binarystring(m.payload), m.key);
  if (w.release_until) tx.exec_prepared("wf_release_write", w.gid, w.epoch, to_us(*w.release_until));
}

// Why `w` was not applied: another epoch, a finished workflow (fenced), or a
// journal that does not end where it says (conflict).
write_status refusal(pqxx::transaction_base& tx, const write& w) {
  auto e = tx.exec_prepared("wf_fence", w.gid);
  const bool fenced = e.empty() || e[0][0].as<std::uint64_t>() != w.epoch || e[0][1].as<int>() != 0;
  return fenced ? write_status::fenced : write_status::conflict;
}

void write_all(pqxx::transaction_base& tx, const std::vector<write_op*>& ops, bool duplicates) {
  if (duplicates) {
    // One by one, in gid order (a workflow's own writes in the order given),
    // so that rows are locked in the same order as by every other statement.
    struct one {
      const write* w;
      write_op* op;
      std::size_t index;
    };
    std::vector<one> all;
    for (auto* op : ops) {
      op->statuses.assign(op->writes.size(), write_status::conflict);
      for (std::size_t i = 0; i < op->writes.size(); ++i) all.push_back({&op->writes[i], op, i});
    }
    std::stable_sort(all.begin(), all.end(), [](const one& a, const one& b) { return a.w->gid < b.w->gid; });
    for (const auto& o : all) {
      o.op->statuses[o.index] = apply_write(tx, *o.w);
      if (o.op->statuses[o.index] == write_status::ok) apply_effects(tx, *o.w);
    }
    return;
  }
  // In gid order: the statement updates the rows in the order given (see wf_write_all).
  std::vector<const write*> sorted;
  for (const auto* op : ops)
    for (const auto& w : op->writes) sorted.push_back(&w);
  std::sort(sorted.begin(), sorted.end(), [](const write* a, const write* b) { return a->gid < b->gid; });
  batch b;
  std::set<std::string> malformed;
  for (const auto* w : sorted)
    if (!b.add(*w)) malformed.insert(w->gid);
  std::set<std::string> applied;
  if (!b.empty())
    for (const auto& row : b.execute(tx)) applied.insert(row[0].as<std::string>());
  for (auto* op : ops) {
    op->statuses.clear();
    for (const auto& w : op->writes) {
      if (malformed.count(w.gid))
        op->statuses.push_back(write_status::conflict);
      else if (applied.count(w.gid))
        op->statuses.push_back(write_status::ok);
      else
        op->statuses.push_back(refusal(tx, w));
      if (op->statuses.back() == write_status::ok) apply_effects(tx, w);
    }
  }
}

}  // namespace

write_status apply_write(pqxx::transaction_base& tx, const write& w) {
  const auto n = static_cast<int>(w.records.size());
  const auto before = size_before(w);
  if (!before) return write_status::conflict;
  const auto size_before = static_cast<int>(*before);
  pqxx::result r;
  if (w.new_progress) {
    const auto& p = *w.new_progress;
    r = tx.exec_prepared("wf_append_progress", w.gid, w.epoch, n, size_before, static_cast<int>(p.status),
                         pqxx::binarystring(p.result), p.attempts, detail::storable_text(p.last_error), to_us(p.next_attempt_at));
  } else {
    r = tx.exec_prepared("wf_append", w.gid, w.epoch, n, size_before);
  }
  if (r.affected_rows() == 0) return refusal(tx, w);
  for (const auto& row : rows_of(w.records))
    tx.exec_prepared("wf_record", w.gid, row.seq, row.kind, row.name, row.branch, row.failed,
                     pqxx::binarystring(row.payload), w.epoch, row.op, row.in_flight, row.pending);
  return write_status::ok;
}

group_writer::group_writer(const postgres_options& o, session::prepare_fn prepare,
                           std::atomic<std::uint64_t>& reconnects)
    : session_(o.connection, std::move(prepare), reconnects),
      schema_(o.schema),
      max_batch_(std::max<std::size_t>(1, o.max_batch)),
      wait_(o.batch_wait),
      observer_(o.observer) {
  thread_ = std::thread([this] { run(); });
}

group_writer::~group_writer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void group_writer::enqueue(std::unique_ptr<write_op> op) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(op));
  }
  cv_.notify_one();
}

void group_writer::run() {
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
void group_writer::commit_group(std::vector<std::unique_ptr<write_op>>& group) {
  std::exception_ptr error;
  bool statement_error = false;
  try {
    const auto started = std::chrono::steady_clock::now();
    run_transaction(group.begin(), group.end());
    if (observer_) {
      try {
        observer_->group_committed(group.size(), std::chrono::steady_clock::now() - started);
      } catch (...) {
      }
    }
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

void group_writer::run_transaction(std::vector<std::unique_ptr<write_op>>::iterator first,
                                 std::vector<std::unique_ptr<write_op>>::iterator last) {
  auto& c = session_.connection();
  std::vector<write_op*> creates, commits;
  bool notify = false, effects = false;
  for (auto it = first; it != last; ++it) {
    if ((*it)->create) {
      creates.push_back(it->get());
      notify = notify || (*it)->create->owner.empty();
    } else {
      commits.push_back(it->get());
      for (const auto& w : (*it)->writes) {
        if (!w.has_effects_beyond_journal()) continue;
        effects = true;
        // New work: a release, or a workflow created with no owner (announced
        // even if the write turns out fenced: a wake-up for nothing is harmless).
        notify = notify || w.release_until || !w.sends.empty() ||
                 std::any_of(w.creates.begin(), w.creates.end(), [](const auto& c) { return c.owner.empty(); });
      }
    }
  }
  const bool duplicates = has_duplicates(commits);
  auto work = [&](pqxx::transaction_base& tx) {
    if (!creates.empty()) create_all(tx, creates);
    if (!commits.empty()) write_all(tx, commits, duplicates);
    if (notify) tx.exec_params("SELECT pg_notify($1, '')", work_channel(schema_));
  };
  if ((creates.empty() || commits.empty()) && !duplicates && !effects) {
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

}  // namespace wf::detail::pg
