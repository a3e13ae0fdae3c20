#include <wf/memory_store.hpp>

#include <algorithm>

namespace wf {

namespace asio = boost::asio;

asio::awaitable<create_result> memory_store::create(workflow_state initial) {
  std::lock_guard lock(mutex_);
  auto it = workflows_.find(initial.gid);
  if (it != workflows_.end()) co_return create_result{false, it->second.state};
  initial.epoch = 1;
  initial.status = workflow_status::running;
  const bool unowned = initial.owner.empty();
  auto& e = workflows_[initial.gid];
  e.state = std::move(initial);
  if (unowned)
    for (const auto& cb : new_work_callbacks_) cb();
  co_return create_result{true, e.state};
}

asio::awaitable<claim_result> memory_store::claim(std::string gid, std::string owner,
                                                  std::chrono::milliseconds lease) {
  std::lock_guard lock(mutex_);
  claim_result r;
  auto it = workflows_.find(gid);
  if (it == workflows_.end()) co_return r;
  auto& s = it->second.state;
  const auto now = wall_clock::now();
  if (s.finished()) {
    r.status = claim_status::finished;
  } else if (!s.owner.empty() && s.owner != owner && s.lease_expires > now) {
    r.status = claim_status::busy;
  } else {
    s.epoch += 1;
    s.owner = std::move(owner);
    s.lease_expires = now + lease;
    s.updated_at = now;
    r.status = claim_status::claimed;
    r.journal = it->second.journal;
  }
  r.state = s;
  co_return r;
}

write_status memory_store::apply(const write& w) {
  auto it = workflows_.find(w.gid);
  if (it == workflows_.end() || it->second.state.epoch != w.epoch) return write_status::fenced;
  auto& e = it->second;
  for (std::size_t i = 0; i < w.records.size(); ++i)
    if (w.records[i].seq != e.journal.size() + 1 + i) return write_status::conflict;
  e.journal.insert(e.journal.end(), w.records.begin(), w.records.end());
  if (w.new_progress) {
    const auto& p = *w.new_progress;
    e.state.status = p.status;
    e.state.result = p.result;
    e.state.attempts = p.attempts;
    e.state.last_error = p.last_error;
    e.state.next_attempt_at = p.next_attempt_at;
  }
  e.state.updated_at = wall_clock::now();
  return write_status::ok;
}

asio::awaitable<std::vector<write_status>> memory_store::commit(std::vector<write> writes) {
  std::lock_guard lock(mutex_);
  std::vector<write_status> out;
  out.reserve(writes.size());
  for (const auto& w : writes) out.push_back(apply(w));
  co_return out;
}

asio::awaitable<std::vector<std::string>> memory_store::renew(std::string owner, std::vector<std::string> gids,
                                                              std::chrono::milliseconds lease) {
  std::lock_guard lock(mutex_);
  std::vector<std::string> lost;
  const auto until = wall_clock::now() + lease;
  for (auto& gid : gids) {
    auto it = workflows_.find(gid);
    if (it == workflows_.end() || it->second.state.owner != owner) {
      lost.push_back(std::move(gid));
      continue;
    }
    it->second.state.lease_expires = until;
  }
  co_return lost;
}

asio::awaitable<std::optional<workflow_state>> memory_store::find(std::string gid) {
  co_return state(gid);
}

asio::awaitable<std::vector<journal_record>> memory_store::journal(std::string gid) {
  co_return records(gid);
}

asio::awaitable<std::vector<workflow_state>> memory_store::runnable(std::string owner, std::size_t limit) {
  std::lock_guard lock(mutex_);
  const auto now = wall_clock::now();
  std::vector<workflow_state> out;
  for (const auto& [gid, e] : workflows_) {
    const auto& s = e.state;
    if (s.finished()) continue;
    if (s.owner.empty() || s.owner == owner || s.lease_expires <= now) out.push_back(s);
  }
  std::sort(out.begin(), out.end(),
            [](const workflow_state& a, const workflow_state& b) { return a.next_attempt_at < b.next_attempt_at; });
  if (out.size() > limit) out.resize(limit);
  co_return out;
}

asio::awaitable<std::size_t> memory_store::purge(wall_clock::time_point before) {
  std::lock_guard lock(mutex_);
  std::size_t n = 0;
  for (auto it = workflows_.begin(); it != workflows_.end();) {
    if (it->second.state.finished() && it->second.state.updated_at < before) {
      it = workflows_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  co_return n;
}

void memory_store::on_new_work(std::function<void()> callback) {
  std::lock_guard lock(mutex_);
  new_work_callbacks_.push_back(std::move(callback));
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
