#include "attempt.hpp"
#include "../text.hpp"

#include <wf/runtime.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <mutex>
#include <unordered_map>

namespace asio = boost::asio;

namespace wf {

// A workflow this runtime is starting or driving, and the callers waiting for it.
struct runtime::active {
  active(asio::any_io_executor ex, std::string n, std::string i)
      : name(std::move(n)), input(std::move(i)), signal(ex, asio::steady_timer::time_point::max()) {}
  std::string name;
  std::string input;
  asio::steady_timer signal;  // never expires; cancelled when done
  bool done = false;
  outcome out;
  std::exception_ptr error;
};

namespace {

void check_gid(const std::string& gid) {
  if (gid.empty()) throw std::invalid_argument("wf: empty workflow id");
  if (gid.size() > 128) throw std::invalid_argument("wf: workflow id longer than 128 bytes");
  for (unsigned char c : gid)
    if (c < 0x21 || c > 0x7e)
      throw std::invalid_argument("wf: workflow id must be printable ASCII without spaces");
}

void check_input(const std::string& input) {
  if (input.size() > max_payload_bytes)
    throw payload_too_large_error("wf: " + detail::size_problem("workflow input", input.size(), max_payload_bytes));
}

}  // namespace

std::string detail::random_uuid(std::mt19937_64& rng) {
  std::uint64_t hi = rng(), lo = rng();
  hi = (hi & ~0xF000ull) | 0x4000ull;
  lo = (lo & ~(0xC000ull << 48)) | (0x8000ull << 48);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFull));
  return buf;
}

namespace {

std::mt19937_64 seeded_rng() {
  std::random_device rd;
  std::seed_seq seq{rd(), rd(), rd(), rd()};
  return std::mt19937_64(seq);
}

}  // namespace

std::string new_gid() {
  thread_local auto rng = seeded_rng();
  return detail::random_uuid(rng);
}

struct runtime::impl : std::enable_shared_from_this<runtime::impl> {
  impl(asio::any_io_executor e, std::shared_ptr<wf::store> s, runtime_options o)
      : ex(std::move(e)),
        st(std::move(s)),
        options(std::move(o)),
        rng(seeded_rng()),
        renew_timer(ex),
        poll_timer(ex) {
    if (options.executor_id.empty()) options.executor_id = detail::random_uuid(rng);
  }

  asio::any_io_executor ex;
  std::shared_ptr<wf::store> st;
  runtime_options options;
  std::mt19937_64 rng;
  std::unordered_map<std::string, detail::registration> registry;
  std::unordered_map<std::string, std::shared_ptr<runtime::active>> active;
  asio::steady_timer renew_timer;
  bool renewing = false;
  asio::steady_timer poll_timer;
  bool polling = false;
  bool wake_pending = false;  // new work announced while the poller was busy
  wall_clock::time_point last_purge{};

  // What the store's new-work callback (any thread, maybe after this runtime
  // is gone) uses to wake the poller.
  struct waker {
    std::mutex mutex;
    bool alive = true;
    asio::any_io_executor ex;
    std::weak_ptr<impl> target;
  };
  std::shared_ptr<waker> wake;

  std::shared_ptr<runtime::active> begin(const std::string& gid, const std::string& name, const std::string& input) {
    auto a = std::make_shared<runtime::active>(ex, name, input);
    active.emplace(gid, a);
    if (!renewing) {
      renewing = true;
      asio::co_spawn(ex, renew_leases(shared_from_this()), asio::detached);
    }
    return a;
  }

  void complete(const std::string& gid, const std::shared_ptr<runtime::active>& a, std::optional<outcome> out,
                std::exception_ptr error) {
    a->done = true;
    if (out) a->out = std::move(*out);
    a->error = std::move(error);
    a->signal.cancel();
    auto it = active.find(gid);
    if (it != active.end() && it->second == a) active.erase(it);
    if (active.empty()) renew_timer.cancel();
  }

  static asio::awaitable<outcome> wait(std::shared_ptr<runtime::active> a) {
    while (!a->done) {
      boost::system::error_code ec;
      co_await a->signal.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (a->error) std::rethrow_exception(a->error);
    co_return a->out;
  }

  static asio::awaitable<void> renew_leases(std::shared_ptr<impl> self) {
    while (!self->active.empty()) {
      self->renew_timer.expires_after(self->options.lease_duration / 3);
      boost::system::error_code ec;
      co_await self->renew_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (self->active.empty()) break;
      std::vector<std::string> gids;
      gids.reserve(self->active.size());
      for (const auto& [gid, a] : self->active) gids.push_back(gid);
      try {
        // A lease we no longer hold shows up as a fenced write; nothing to do here.
        co_await self->st->renew(self->options.executor_id, std::move(gids), self->options.lease_duration);
      } catch (const std::exception&) {
        // The store is unreachable: try again at the next tick.
      }
    }
    self->renewing = false;
  }

  void start(const detail::registration& reg, std::shared_ptr<runtime::active> a, workflow_state state,
             std::vector<journal_record> journal) {
    asio::co_spawn(ex, drive(shared_from_this(), reg, std::move(a), std::move(state), std::move(journal)),
                   asio::detached);
  }

  static asio::awaitable<detail::attempt_result> run_attempt(wf::store& st, const detail::registration& reg,
                                                             const workflow_state& state,
                                                             std::vector<journal_record> journal,
                                                             std::mt19937_64& rng) {
    std::optional<detail::attempt> at;
    detail::attempt_result stuck;
    try {
      at.emplace(st, reg, state, std::move(journal), rng);
    } catch (const detail::corrupt_journal_error& e) {
      stuck.what = detail::attempt_result::kind::stuck;
      stuck.error = e.what();
      stuck.exception = std::make_exception_ptr(workflow_stuck_error(e.what()));
    }
    if (!at) co_return stuck;
    co_return co_await at->run();
  }

  // Runs a workflow claimed from the store. False if it is not registered
  // here (left alone: its lease lapses and another runner may take it) or
  // already runs here.
  bool adopt(claim_result& c) {
    auto reg = registry.find(c.state.name);
    if (reg == registry.end() || active.count(c.state.gid)) return false;
    auto a = begin(c.state.gid, c.state.name, c.state.input);
    start(reg->second, std::move(a), std::move(c.state), std::move(c.journal));
    return true;
  }

  // The poller: takes over enqueued workflows and those whose runner's lease expired.
  static asio::awaitable<void> poll(std::shared_ptr<impl> self) {
    while (self->polling) {
      std::size_t claimed_count = 0;
      try {
        auto claimed =
            co_await self->st->claim_due(self->options.executor_id, self->options.lease_duration, self->options.claim_batch);
        claimed_count = claimed.size();
        for (auto& c : claimed) self->adopt(c);
        const auto now = wall_clock::now();
        if (self->options.retention.count() > 0 && now - self->last_purge >= std::chrono::minutes(1)) {
          self->last_purge = now;
          co_await self->st->purge(now - self->options.retention);
        }
      } catch (const std::exception&) {
        // The store is unreachable: try again at the next poll.
      }
      if (!self->polling) break;
      if (claimed_count >= self->options.claim_batch) continue;  // more may be due right now
      if (self->wake_pending) {
        self->wake_pending = false;
        continue;
      }
      self->poll_timer.expires_after(self->options.poll_interval);
      boost::system::error_code ec;
      co_await self->poll_timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  // Runs attempts until the workflow finishes, backing off between them.
  // Its frame is what a running workflow keeps between attempts, so the
  // rarer paths live in coroutines of their own that finish before it waits.
  static asio::awaitable<void> drive(std::shared_ptr<impl> self, const detail::registration& reg,
                                     std::shared_ptr<runtime::active> a, workflow_state state,
                                     std::vector<journal_record> journal) {
    std::chrono::milliseconds interval{0};
    for (;;) {
      auto r = co_await run_attempt(*self->st, reg, state, std::move(journal), self->rng);
      if (r.what == detail::attempt_result::kind::finished) {
        self->complete(state.gid, a, std::move(r.out), nullptr);
        co_return;
      }
      if (r.what != detail::attempt_result::kind::transient) {
        co_await stop(self, state, r);
        self->complete(state.gid, a, std::nullopt, r.exception);
        co_return;
      }
      interval = reg.options.retry.next_interval(interval, !r.ongoing);
      auto next = co_await back_off(self, reg, state, std::move(r), interval);
      if (!next) {
        self->complete(state.gid, a, std::nullopt,
                       std::make_exception_ptr(lease_lost_error("workflow '" + state.gid + "' was claimed by another runner")));
        co_return;
      }
      journal = std::move(*next);
    }
  }

  // A bug or a lost claim: a stuck workflow is marked so (best effort).
  static asio::awaitable<void> stop(std::shared_ptr<impl> self, const workflow_state& state,
                                    const detail::attempt_result& r) {
    if (r.what != detail::attempt_result::kind::stuck) co_return;
    write w{state.gid, state.epoch, {}, detail::progress_of(state, workflow_status::stuck, r.error)};
    try {
      co_await detail::commit_one(*self->st, std::move(w));
    } catch (const std::exception&) {
      // The journal is left as it is either way.
    }
  }

  // After a transient error: note it on the workflow's status, wait, and
  // re-read the journal (the last write's outcome may be unknown). Returns
  // the journal, or nothing if another runner claimed the workflow.
  static asio::awaitable<std::optional<std::vector<journal_record>>> back_off(
      std::shared_ptr<impl> self, const detail::registration& reg, workflow_state& state, detail::attempt_result r,
      std::chrono::milliseconds& interval) {
    asio::steady_timer timer(self->ex);
    for (;;) {
      state.attempts += 1;
      state.last_error = r.error;
      state.next_attempt_at = wall_clock::now() + interval;
      bool fenced = false;
      write w{state.gid, state.epoch, {}, detail::progress_of(state, workflow_status::running, {})};
      try {
        fenced = co_await detail::commit_one(*self->st, std::move(w)) != write_status::ok;
      } catch (const std::exception& e) {
        r.error = std::string("store: ") + e.what();
      }
      if (fenced) co_return std::nullopt;
      timer.expires_after(interval);
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      try {
        co_return co_await self->st->journal(state.gid);
      } catch (const std::exception& e) {
        r.error = std::string("store: ") + e.what();
        interval = reg.options.retry.next_interval(interval, true);
      }
    }
  }
};

runtime::runtime(asio::any_io_executor executor, std::shared_ptr<store> store, runtime_options options)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(store), std::move(options))) {
  if (!impl_->st) throw std::invalid_argument("wf::runtime: null store");
  if (impl_->options.lease_duration.count() < 3) throw std::invalid_argument("wf::runtime: lease_duration too short");
  if (const auto problem = detail::name_problem(impl_->options.executor_id, 128); !problem.empty())
    throw std::invalid_argument("wf::runtime: executor_id " + problem);
}

runtime::~runtime() {
  stop();
  if (impl_->wake) {
    std::lock_guard lock(impl_->wake->mutex);
    impl_->wake->alive = false;
  }
}

void runtime::start() {
  auto& self = *impl_;
  if (self.polling) return;
  self.polling = true;
  if (!self.wake) {
    self.wake = std::make_shared<impl::waker>();
    self.wake->ex = self.ex;
    self.wake->target = impl_;
    self.st->on_new_work([w = self.wake] {
      std::lock_guard lock(w->mutex);
      if (!w->alive) return;
      asio::post(w->ex, [t = w->target] {
        if (auto s = t.lock()) {
          s->wake_pending = true;
          s->poll_timer.cancel();
        }
      });
    });
  }
  asio::co_spawn(self.ex, impl::poll(impl_), asio::detached);
}

void runtime::stop() {
  impl_->polling = false;
  impl_->poll_timer.cancel();
}

namespace {

const detail::registration& registered(const runtime::impl& self, const std::string& name) {
  auto it = self.registry.find(name);
  if (it == self.registry.end()) throw unknown_workflow_error("wf: no workflow registered as '" + name + "'");
  return it->second;
}

// The state a new workflow is created with (with no owner, any runner may claim it).
workflow_state new_workflow(const std::string& gid, const std::string& name, const std::string& input,
                            const detail::registration& reg, std::string owner, std::chrono::milliseconds lease) {
  const auto now = wall_clock::now();
  workflow_state s;
  s.gid = gid;
  s.name = name;
  s.input = input;
  s.epoch = 1;
  s.owner = std::move(owner);
  s.lease_expires = now + lease;
  s.next_attempt_at = now;
  if (reg.options.timeout) s.deadline = now + *reg.options.timeout;
  s.created_at = s.updated_at = now;
  return s;
}

// An existing gid may be executed again only with the same name and input.
void check_same(const std::string& gid, const std::string& name, const std::string& input,
                const std::string& existing_name, const std::string& existing_input) {
  if (existing_name != name)
    throw conflict_error("wf: workflow id '" + gid + "' is taken by a '" + existing_name + "' workflow");
  if (existing_input != input)
    throw conflict_error("wf: workflow id '" + gid + "' already exists with a different input");
}

}  // namespace

asio::awaitable<void> runtime::enqueue(std::string name, std::string gid, std::string input) {
  auto self = impl_;
  check_gid(gid);
  check_input(input);
  auto init = new_workflow(gid, name, input, registered(*self, name), "", std::chrono::milliseconds(0));
  auto created = co_await self->st->create(std::move(init));
  if (!created.created) check_same(gid, name, input, created.state.name, created.state.input);
}

asio::awaitable<std::size_t> runtime::purge(std::chrono::seconds older_than) {
  auto self = impl_;
  co_return co_await self->st->purge(wall_clock::now() - older_than);
}

asio::any_io_executor runtime::get_executor() const noexcept { return impl_->ex; }
const std::string& runtime::executor_id() const noexcept { return impl_->options.executor_id; }

void runtime::add(std::string name, detail::raw_workflow fn, workflow_options options) {
  if (name.empty()) throw std::invalid_argument("wf: empty workflow name");
  if (const auto problem = detail::name_problem(name); !problem.empty())
    throw std::invalid_argument("wf: workflow name " + problem);
  if (impl_->registry.count(name)) throw duplicate_workflow_error("wf: workflow '" + name + "' is already registered");
  impl_->registry.emplace(std::move(name), detail::registration{std::move(fn), std::move(options)});
}

namespace {
outcome outcome_of(const workflow_state& s) {
  if (s.status == workflow_status::stuck)
    throw workflow_stuck_error("wf: workflow '" + s.gid + "' is stuck: " + s.result);
  outcome o;
  o.status = s.status;
  (s.status == workflow_status::succeeded ? o.result : o.reason) = s.result;
  return o;
}
}  // namespace

asio::awaitable<outcome> runtime::execute(std::string name, std::string gid, std::string input) {
  // Two steps, so that what starting needs is freed while the caller waits:
  // a parked caller holds only this small frame.
  auto a = co_await join_or_start(std::move(name), std::move(gid), std::move(input));
  co_return co_await impl::wait(std::move(a));
}

asio::awaitable<std::shared_ptr<runtime::active>> runtime::join_or_start(std::string name, std::string gid,
                                                                         std::string input) {
  auto self = impl_;
  check_gid(gid);
  check_input(input);
  const auto& reg = registered(*self, name);
  auto conflict = [&](const std::string& existing_name, const std::string& existing_input) {
    check_same(gid, name, input, existing_name, existing_input);
  };

  if (auto it = self->active.find(gid); it != self->active.end()) {
    conflict(it->second->name, it->second->input);
    co_return it->second;
  }

  auto a = self->begin(gid, name, input);
  try {
    auto init = new_workflow(gid, name, input, reg, self->options.executor_id, self->options.lease_duration);
    auto created = co_await self->st->create(std::move(init));
    if (created.created) {
      self->start(reg, a, std::move(created.state), {});
    } else {
      conflict(created.state.name, created.state.input);
      asio::steady_timer poll(self->ex);
      for (;;) {
        auto c = co_await self->st->claim(gid, self->options.executor_id, self->options.lease_duration);
        if (c.status == claim_status::claimed) {
          self->start(reg, a, std::move(c.state), std::move(c.journal));
          break;
        }
        if (c.status == claim_status::finished) {
          self->complete(gid, a, outcome_of(c.state), nullptr);
          break;
        }
        if (c.status == claim_status::not_found)
          throw std::runtime_error("wf: workflow '" + gid + "' vanished from the store");
        // Busy: another runner holds it. Wait for it to finish or its lease to lapse.
        poll.expires_after(std::min<std::chrono::milliseconds>(self->options.lease_duration / 4,
                                                               std::chrono::seconds(1)));
        boost::system::error_code ec;
        co_await poll.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
    }
  } catch (...) {
    self->complete(gid, a, std::nullopt, std::current_exception());
  }
  co_return a;
}

asio::awaitable<std::size_t> runtime::recover() {
  auto self = impl_;
  std::size_t resumed = 0;
  if (self->active.empty()) {
    // At start-up (nothing running here yet), claim everything in one go.
    auto claimed = co_await self->st->claim_resumable(self->options.executor_id, self->options.lease_duration,
                                                      std::numeric_limits<std::size_t>::max());
    for (auto& c : claimed)
      if (self->adopt(c)) ++resumed;
    co_return resumed;
  }
  // Some workflows already run here: claim one by one, skipping them.
  auto candidates = co_await self->st->runnable(self->options.executor_id, std::numeric_limits<std::size_t>::max());
  for (auto& s : candidates) {
    auto reg_it = self->registry.find(s.name);
    if (reg_it == self->registry.end() || self->active.count(s.gid)) continue;
    auto a = self->begin(s.gid, s.name, s.input);
    try {
      auto c = co_await self->st->claim(s.gid, self->options.executor_id, self->options.lease_duration);
      if (c.status == claim_status::claimed) {
        self->start(reg_it->second, a, std::move(c.state), std::move(c.journal));
        ++resumed;
        continue;
      }
      if (c.status == claim_status::finished)
        self->complete(s.gid, a, outcome_of(c.state), nullptr);
      else
        self->complete(s.gid, a, std::nullopt,
                       std::make_exception_ptr(lease_lost_error("wf: '" + s.gid + "' is run by another runner")));
    } catch (...) {
      self->complete(s.gid, a, std::nullopt, std::current_exception());
    }
  }
  co_return resumed;
}

asio::awaitable<std::optional<workflow_state>> runtime::status(std::string gid) {
  auto self = impl_;
  co_return co_await self->st->find(std::move(gid));
}

std::chrono::milliseconds retry_policy::next_interval(std::chrono::milliseconds previous, bool grow) const noexcept {
  if (previous.count() <= 0) return std::min(initial_interval, max_interval);
  if (!grow) return previous;
  const double next = static_cast<double>(previous.count()) * coefficient;
  const double cap = static_cast<double>(max_interval.count());
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::min(next, cap)));
}

}  // namespace wf
