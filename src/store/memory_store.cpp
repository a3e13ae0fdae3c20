#include <wf/memory_store.hpp>

#include "store_checks.hpp"

#include <algorithm>
#include <stdexcept>

namespace wf {

namespace asio = boost::asio;

memory_store::memory_store(std::shared_ptr<wf::clock> clock) : clock_(std::move(clock)) {
  if (!clock_) throw std::invalid_argument("wf::memory_store: null clock");
}

void memory_store::announce() {
  std::lock_guard lock(listeners_->mutex);
  for (const auto& [id, cb] : listeners_->callbacks) cb();
}

asio::awaitable<create_result> memory_store::create(workflow_state initial) {
  create_result out;
  {
    std::lock_guard lock(mutex_);
    auto it = workflows_.find(initial.gid);
    if (it != workflows_.end()) co_return create_result{false, it->second.state};
    initial.epoch = 1;
    initial.status = workflow_status::running;
    auto& e = workflows_[initial.gid];
    e.state = std::move(initial);
    out = {true, e.state};
  }
  if (out.state.owner.empty()) announce();
  co_return out;
}

bool memory_store::claimable(const workflow_state& s, const std::string& owner, wall_clock::time_point now) const {
  return !s.finished() && (s.owner.empty() || s.owner == owner || s.lease_expires <= now);
}

claim_result memory_store::take(entry& e, std::string owner, std::chrono::milliseconds lease,
                                wall_clock::time_point now) {
  auto& s = e.state;
  std::string previous = std::move(s.owner);
  s.epoch += 1;
  s.owner = std::move(owner);
  s.lease_expires = now + lease;
  s.updated_at = now;
  return claim_result{claim_status::claimed, s, e.journal, std::move(previous)};
}

asio::awaitable<claim_result> memory_store::claim(std::string gid, std::string owner,
                                                  std::chrono::milliseconds lease) {
  std::lock_guard lock(mutex_);
  auto it = workflows_.find(gid);
  if (it == workflows_.end()) co_return claim_result{};
  const auto now = clock_->now();
  auto& s = it->second.state;
  if (s.finished()) co_return claim_result{claim_status::finished, s, {}};
  if (!claimable(s, owner, now)) co_return claim_result{claim_status::busy, s, {}};
  co_return take(it->second, std::move(owner), lease, now);
}

write_status memory_store::apply(write& w, bool& new_work) {
  auto it = workflows_.find(w.gid);
  // Fenced: another epoch, or finished (final: nothing is written to it any more).
  if (it == workflows_.end() || it->second.state.epoch != w.epoch || it->second.state.finished())
    return write_status::fenced;
  auto& e = it->second;
  for (std::size_t i = 0; i < w.records.size(); ++i)
    if (w.records[i].seq != e.journal.size() + 1 + i) return write_status::conflict;
  e.journal.insert(e.journal.end(), std::make_move_iterator(w.records.begin()),
                   std::make_move_iterator(w.records.end()));
  if (w.new_progress) {
    auto& p = *w.new_progress;
    e.state.status = p.status;
    e.state.result = std::move(p.result);
    e.state.attempts = p.attempts;
    e.state.last_error = std::move(p.last_error);
    e.state.next_attempt_at = p.next_attempt_at;
  }
  const auto now = clock_->now();
  e.state.updated_at = now;
  for (auto& c : w.creates) {
    if (workflows_.count(c.gid)) continue;  // an existing workflow is left as it is
    c.epoch = 1;
    c.status = workflow_status::running;
    new_work = new_work || c.owner.empty();
    auto& created = workflows_[c.gid];
    created.state = std::move(c);
  }
  if (!w.consumes.empty()) {
    auto box = inboxes_.find(w.gid);
    if (box != inboxes_.end())
      for (auto& stored : box->second)
        if (std::find(w.consumes.begin(), w.consumes.end(), stored.m.id) != w.consumes.end()) stored.consumed = true;
  }
  for (auto& m : w.sends) deliver(m, now, new_work);
  // Last, as on PostgreSQL: a message the write sends its own workflow does not wake it.
  if (w.release_until && !e.state.finished()) {
    e.state.epoch += 1;
    e.state.owner.clear();
    e.state.lease_expires = now;
    e.state.next_attempt_at = *w.release_until;
    new_work = true;
  }
  return write_status::ok;
}

bool memory_store::delivered_before(const message& m) const {
  auto box = inboxes_.find(m.gid);
  if (box == inboxes_.end()) return false;
  return std::any_of(box->second.begin(), box->second.end(),
                     [&](const stored_message& stored) { return stored.m.key == m.key; });
}

bool memory_store::deliver(message& m, wall_clock::time_point now, bool& new_work) {
  if (delivered_before(m)) return false;
  inboxes_[m.gid].push_back(
      {inbox_message{next_message_id_++, std::move(m.topic), std::move(m.payload), std::move(m.key), now}, false});
  auto it = workflows_.find(m.gid);
  if (it != workflows_.end()) {
    auto& st = it->second.state;
    if (!st.finished() && (st.owner.empty() || st.lease_expires <= now)) {
      st.next_attempt_at = std::min(st.next_attempt_at, now);
      new_work = true;
    }
  }
  return true;
}

asio::awaitable<send_status> memory_store::send(message m, bool to_missing) {
  detail::check_message(m, "wf::memory_store");
  send_status out = send_status::delivered;
  bool new_work = false;
  {
    std::lock_guard lock(mutex_);
    auto it = workflows_.find(m.gid);
    if (delivered_before(m))
      out = send_status::duplicate;  // first: a repeated send stays a no-op once the workflow finished
    else if (it == workflows_.end() && !to_missing)
      out = send_status::unknown;
    else if (it != workflows_.end() && it->second.state.finished())
      out = send_status::finished;
    else
      deliver(m, clock_->now(), new_work);
  }
  if (new_work) announce();
  co_return out;
}

asio::awaitable<std::vector<inbox_message>> memory_store::inbox(std::string gid, std::string topic,
                                                                std::size_t limit) {
  std::lock_guard lock(mutex_);
  std::vector<inbox_message> out;
  auto box = inboxes_.find(gid);
  if (box == inboxes_.end()) co_return out;
  for (const auto& stored : box->second) {
    if (out.size() >= limit) break;
    if (!stored.consumed && stored.m.topic == topic) out.push_back(stored.m);
  }
  co_return out;
}

asio::awaitable<std::vector<write_status>> memory_store::commit(std::vector<write> writes) {
  std::vector<write_status> out;
  bool new_work = false;
  {
    detail::check_messages(writes, "wf::memory_store");  // before anything is applied
    std::lock_guard lock(mutex_);
    out.reserve(writes.size());
    for (auto& w : writes) out.push_back(apply(w, new_work));
  }
  if (new_work) announce();
  co_return out;
}

asio::awaitable<std::vector<std::string>> memory_store::renew(std::string owner, std::vector<std::string> gids,
                                                              std::chrono::milliseconds lease) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> lost;
  const auto until = clock_->now() + lease;
  for (auto& gid : gids) {
    auto it = workflows_.find(gid);
    if (it == workflows_.end() || it->second.state.owner != owner || it->second.state.finished()) {
      lost.push_back(std::move(gid));
      continue;
    }
    it->second.state.lease_expires = until;
  }
  co_return lost;
}

asio::awaitable<void> memory_store::release(std::string owner, std::vector<std::string> gids) {
  bool released = false;
  {
    std::lock_guard lock(mutex_);
    const auto now = clock_->now();
    for (const auto& gid : gids) {
      auto it = workflows_.find(gid);
      if (it == workflows_.end()) continue;
      auto& s = it->second.state;
      if (s.owner != owner || s.finished()) continue;
      s.epoch += 1;
      s.owner.clear();
      s.lease_expires = now;
      s.next_attempt_at = now;
      s.updated_at = now;
      released = true;
    }
  }
  if (released) announce();
  co_return;
}

asio::awaitable<std::optional<workflow_state>> memory_store::find(std::string gid) { co_return state(gid); }

asio::awaitable<std::vector<journal_record>> memory_store::journal(std::string gid) { co_return records(gid); }

asio::awaitable<std::vector<workflow_state>> memory_store::runnable(std::string owner, std::size_t limit) {
  std::lock_guard lock(mutex_);
  const auto now = clock_->now();
  std::vector<workflow_state> out;
  for (const auto& [gid, e] : workflows_)
    if (claimable(e.state, owner, now)) out.push_back(e.state);
  std::sort(out.begin(), out.end(),
            [](const workflow_state& a, const workflow_state& b) { return a.next_attempt_at < b.next_attempt_at; });
  if (out.size() > limit) out.resize(limit);
  co_return out;
}

namespace {
bool named(const claim_request& r, const std::string& name) {
  return r.names.empty() || std::find(r.names.begin(), r.names.end(), name) != r.names.end();
}
}  // namespace

asio::awaitable<std::vector<claim_result>> memory_store::claim_due(claim_request request) {
  std::lock_guard lock(mutex_);
  const auto now = clock_->now();
  std::vector<entry*> due;
  for (auto& [gid, e] : workflows_) {
    const auto& s = e.state;
    if (!s.finished() && s.next_attempt_at <= now && (s.owner.empty() || s.lease_expires <= now) &&
        named(request, s.name))
      due.push_back(&e);
  }
  std::sort(due.begin(), due.end(),
            [](const entry* a, const entry* b) { return a->state.next_attempt_at < b->state.next_attempt_at; });
  if (due.size() > request.limit) due.resize(request.limit);
  std::vector<claim_result> out;
  for (auto* e : due) out.push_back(take(*e, request.owner, request.lease, now));
  co_return out;
}

asio::awaitable<std::vector<claim_result>> memory_store::claim_resumable(claim_request request) {
  std::lock_guard lock(mutex_);
  const auto now = clock_->now();
  auto& exclude = request.exclude;
  std::sort(exclude.begin(), exclude.end());
  std::vector<claim_result> out;
  for (auto it = workflows_.upper_bound(request.after); it != workflows_.end() && out.size() < request.limit; ++it) {
    if (!claimable(it->second.state, request.owner, now) || !named(request, it->second.state.name)) continue;
    if (std::binary_search(exclude.begin(), exclude.end(), it->first)) continue;
    out.push_back(take(it->second, request.owner, request.lease, now));
  }
  co_return out;
}

subscription memory_store::on_new_work(std::function<void()> callback) {
  std::uint64_t id;
  {
    std::lock_guard lock(listeners_->mutex);
    id = listeners_->next++;
    listeners_->callbacks.emplace(id, std::move(callback));
  }
  return subscription([l = listeners_, id] {
    std::lock_guard lock(l->mutex);
    l->callbacks.erase(id);
  });
}

namespace {
// Whether `s` passes the filters of `q` (its cursor aside).
bool matches(const workflow_query& q, const workflow_state& s) {
  return (!q.name || s.name == *q.name) && (!q.status || s.status == *q.status) && (!q.owner || s.owner == *q.owner) &&
         (!q.created_from || s.created_at >= *q.created_from) && (!q.created_until || s.created_at < *q.created_until);
}
}  // namespace

asio::awaitable<workflow_page> memory_store::list(workflow_query query) {
  detail::check_query(query, "wf::memory_store");
  workflow_page page;
  std::lock_guard lock(mutex_);
  std::uint64_t total = 0;
  // One walk: from the first gid when counting (the matches before the cursor count too).
  for (auto it = query.count ? workflows_.begin() : workflows_.upper_bound(query.after); it != workflows_.end(); ++it) {
    if (!matches(query, it->second.state)) continue;
    ++total;
    if (it->first <= query.after) continue;
    if (page.workflows.size() < query.limit) {
      page.workflows.push_back(it->second.state);
    } else {
      if (page.next.empty()) page.next = page.workflows.back().gid;  // there is more
      if (!query.count) break;
    }
  }
  if (query.count) page.total = total;
  co_return page;
}

asio::awaitable<std::size_t> memory_store::purge(wall_clock::time_point before, std::size_t limit) {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (auto it = workflows_.begin(); it != workflows_.end() && n < limit;) {
    if (it->second.state.finished() && it->second.state.updated_at < before) {
      inboxes_.erase(it->first);
      it = workflows_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  co_return n;
}

asio::awaitable<bool> memory_store::resume(std::string gid) {
  {
    std::lock_guard lock(mutex_);
    auto it = workflows_.find(gid);
    if (it == workflows_.end() || it->second.state.status != workflow_status::stuck) co_return false;
    auto& s = it->second.state;
    const auto now = clock_->now();
    s.status = workflow_status::running;
    s.result.clear();
    s.attempts = 0;
    s.last_error.clear();
    s.epoch += 1;
    s.owner.clear();
    s.lease_expires = now;
    s.next_attempt_at = now;
    s.updated_at = now;
  }
  announce();
  co_return true;
}

std::vector<journal_record> memory_store::records(const std::string& gid) const {
  std::lock_guard lock(mutex_);
  auto it = workflows_.find(gid);
  return it == workflows_.end() ? std::vector<journal_record>{} : it->second.journal;
}

std::optional<workflow_state> memory_store::state(const std::string& gid) const {
  std::lock_guard lock(mutex_);
  auto it = workflows_.find(gid);
  if (it == workflows_.end()) return std::nullopt;
  return it->second.state;
}

std::size_t memory_store::size() const {
  std::lock_guard lock(mutex_);
  return workflows_.size();
}

}  // namespace wf
