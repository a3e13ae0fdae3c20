// The runtime's public API. The workflow driver, the poller and lease
// renewal are in driver.cpp, poller.cpp and leases.cpp (see core.hpp).
#include "core.hpp"
#include "../text.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <cstdio>
#include <limits>

namespace asio = boost::asio;

namespace wf {

namespace {

void check_gid(const std::string& gid) {
  if (gid.empty()) throw std::invalid_argument("wf: empty workflow id");
  if (gid.size() > 128) throw std::invalid_argument("wf: workflow id longer than 128 bytes");
  for (unsigned char c : gid)
    if (c < 0x21 || c > 0x7e) throw std::invalid_argument("wf: workflow id must be printable ASCII without spaces");
}

void check_input(const std::string& input) {
  if (input.size() > max_payload_bytes)
    throw payload_too_large_error("wf: " + detail::size_problem("workflow input", input.size(), max_payload_bytes));
}

std::mt19937_64 seeded_rng() {
  std::random_device rd;
  std::seed_seq seq{rd(), rd(), rd(), rd()};
  return std::mt19937_64(seq);
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

std::string new_gid() {
  thread_local auto rng = seeded_rng();
  return detail::random_uuid(rng);
}

// ---- waiting lists

asio::awaitable<void> detail::wait_on(std::vector<asio::any_completion_handler<void()>>& handlers) {
  auto init = [&handlers](auto handler) { handlers.push_back(std::move(handler)); };
  return asio::async_initiate<const asio::use_awaitable_t<>&, void()>(init, asio::use_awaitable);
}

void detail::wake_all(const asio::any_io_executor& ex, std::vector<asio::any_completion_handler<void()>>& handlers) {
  auto list = std::move(handlers);
  handlers.clear();
  for (auto& h : list) detail::post_completion(ex, std::move(h));
}

// ---- the runtime's internals

runtime::impl::impl(asio::any_io_executor e, std::shared_ptr<wf::store> s, runtime_options o)
    : ex(std::move(e)), st(std::move(s)), options(std::move(o)), rng(seeded_rng()) {
  clock = options.clock ? options.clock : system_clock();
  classify = options.classify ? options.classify : [](const std::exception_ptr& e) { return wf::classify(e); };
  if (options.executor_id.empty()) options.executor_id = detail::random_uuid(rng);
  context = detail::state_of(ex);
}

runtime::impl::~impl() {
  if (context && context_hook) context->remove_hook(context_hook);
}

void runtime::impl::context_shutdown() {
  // The io_context is shutting down while this object lives on (held by the
  // runtime object): what holds its handlers goes now, with it.
  context_gone = true;
  polling = false;
  new_work.reset();
  for (auto& [gid, a] : active) a->waiters.clear();
  active.clear();
  recovery_waiters.clear();
  drained.reset();
}

void runtime::impl::check_running() const {
  if (shutting_down) throw shutdown_error("wf: the runtime is shutting down");
}

std::shared_ptr<runtime::active> runtime::impl::begin(const std::string& gid, const std::string& name,
                                                      const std::string& input) {
  auto a = std::make_shared<runtime::active>(name, input);
  active.emplace(gid, a);
  start_renewing();
  return a;
}

void runtime::impl::complete(const std::string& gid, const std::shared_ptr<runtime::active>& a,
                             std::optional<outcome> out, std::exception_ptr error) {
  a->done = true;
  if (out) a->out = std::move(*out);
  a->error = std::move(error);
  detail::wake_all(ex, a->waiters);
  auto it = active.find(gid);
  if (it != active.end() && it->second == a) active.erase(it);
  if (active.empty()) {
    if (renew_timer) renew_timer->cancel();
    if (drained) detail::post_completion(ex, drained.take());
  }
}

claim_request runtime::impl::claims(std::size_t limit) const {
  claim_request r;
  r.owner = options.executor_id;
  r.lease = options.lease_duration;
  r.limit = limit;
  for (const auto& [name, reg] : registry) r.names.push_back(name);
  if (r.names.empty()) r.names.push_back({});  // nothing registered: nothing to claim (no name is empty)
  return r;
}

bool runtime::impl::adopt(claim_result& c) {
  auto reg = registry.find(c.state.name);
  if (reg == registry.end() || active.count(c.state.gid)) return false;
  detail::notify(obs(), [&](observer& o) {
    o.workflow_resumed({c.state.gid, c.state.name}, c.previous_owner, is_takeover(c.previous_owner));
  });
  auto a = begin(c.state.gid, c.state.name, c.state.input);
  start(reg->second, std::move(a), std::move(c.state), std::move(c.journal));
  return true;
}

void runtime::active::request_stop(detail::attempt::stop_cause cause) {
  if (stop || done) return;
  stop = cause;
  if (current) current->stop(cause);
  cancel->emit(asio::cancellation_type::terminal);
}

// ---- the public API

runtime::runtime(asio::any_io_executor executor, std::shared_ptr<store> store, runtime_options options) {
  if (!store) throw std::invalid_argument("wf::runtime: null store");
  if (options.lease_duration.count() < 3) throw std::invalid_argument("wf::runtime: lease_duration too short");
  if (const auto problem = detail::name_problem(options.executor_id, 128); !problem.empty())
    throw std::invalid_argument("wf::runtime: executor_id " + problem);
  impl_ = std::make_shared<impl>(std::move(executor), std::move(store), std::move(options));
  std::weak_ptr<impl> weak = impl_;
  impl_->context_hook = impl_->context->add_hook([weak] {
    if (auto self = weak.lock()) self->context_shutdown();
  });
}

runtime::~runtime() {
  if (impl_->context_gone) return;  // everything it held went with the io_context
  stop();
  impl_->new_work.reset();
}

void runtime::stop() {
  impl_->polling = false;
  if (impl_->poll_timer) impl_->poll_timer->cancel();
}

void runtime::start() {
  impl_->check_running();
  impl_->start_polling();
}

namespace {

const detail::registration& registered(const runtime::impl& self, const std::string& name) {
  auto it = self.registry.find(name);
  if (it == self.registry.end()) throw unknown_workflow_error("wf: no workflow registered as '" + name + "'");
  return it->second;
}

// The state a new workflow is created with (with no owner, any runner may claim it).
workflow_state new_workflow(const std::string& gid, const std::string& name, const std::string& input,
                            const detail::registration& reg, std::string owner, std::chrono::milliseconds lease,
                            wall_clock::time_point now) {
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
  if (existing_input != input) throw conflict_error("wf: workflow id '" + gid + "' already exists with a different input");
}

outcome outcome_of(const workflow_state& s) {
  if (s.status == workflow_status::stuck)
    throw workflow_stuck_error("wf: workflow '" + s.gid + "' is stuck: " + s.result);
  outcome o;
  o.status = s.status;
  (s.status == workflow_status::succeeded ? o.result : o.reason) = s.result;
  return o;
}

}  // namespace

asio::awaitable<void> runtime::enqueue(std::string name, std::string gid, std::string input) {
  auto self = impl_;
  self->check_running();
  check_gid(gid);
  check_input(input);
  auto init = new_workflow(gid, name, input, registered(*self, name), "", std::chrono::milliseconds(0),
                           self->clock->now());
  auto created = co_await self->st->create(std::move(init));
  if (!created.created) check_same(gid, name, input, created.state.name, created.state.input);
}

asio::awaitable<std::size_t> runtime::purge(std::chrono::seconds older_than) {
  auto self = impl_;
  auto* admin = self->st->admin();
  if (!admin) throw std::logic_error("wf: this store cannot purge");
  const auto before = self->clock->now() - older_than;
  std::size_t total = 0;
  for (;;) {  // in batches, each a short operation of its own
    const auto n = co_await admin->purge(before, 1000);
    total += n;
    if (n < 1000) co_return total;
  }
}

asio::awaitable<bool> runtime::resume(std::string gid) {
  auto self = impl_;
  auto* admin = self->st->admin();
  if (!admin) throw std::logic_error("wf: this store cannot resume workflows");
  co_return co_await admin->resume(std::move(gid));
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

asio::awaitable<outcome> runtime::execute(std::string name, std::string gid, std::string input) {
  // Two steps, so that what starting needs is freed while the caller waits:
  // a parked caller holds only this small frame.
  auto a = co_await join_or_start(std::move(name), std::move(gid), std::move(input));
  while (!a->done) co_await detail::wait_on(a->waiters);
  if (a->error) std::rethrow_exception(a->error);
  co_return a->out;
}

asio::awaitable<std::shared_ptr<runtime::active>> runtime::join_or_start(std::string name, std::string gid,
                                                                         std::string input) {
  auto self = impl_;
  self->check_running();
  check_gid(gid);
  check_input(input);
  const auto& reg = registered(*self, name);
  // recover() is claiming: wait, so that it cannot claim what starts here.
  while (self->recovering > 0) co_await detail::wait_on(self->recovery_waiters);
  self->check_running();

  if (auto it = self->active.find(gid); it != self->active.end()) {
    check_same(gid, name, input, it->second->name, it->second->input);
    co_return it->second;
  }

  auto a = self->begin(gid, name, input);
  try {
    auto init = new_workflow(gid, name, input, reg, self->options.executor_id, self->options.lease_duration,
                             self->clock->now());
    auto created = co_await self->st->create(std::move(init));
    if (created.created) {
      detail::notify(self->obs(), [&](observer& o) { o.workflow_created({gid, name}); });
      self->start(reg, a, std::move(created.state), {});
    } else {
      check_same(gid, name, input, created.state.name, created.state.input);
      if (created.state.finished()) {
        // Finished already (a caller asking again, or one arriving after a
        // recovery): the outcome is in the state the store returned; no claim.
        self->complete(gid, a, outcome_of(created.state), nullptr);
        co_return a;
      }
      asio::steady_timer poll(self->ex);
      for (;;) {
        auto c = co_await self->st->claim(gid, self->options.executor_id, self->options.lease_duration);
        if (c.status == claim_status::claimed) {
          detail::notify(self->obs(), [&](observer& o) {
            o.workflow_resumed({gid, name}, c.previous_owner, self->is_takeover(c.previous_owner));
          });
          self->start(reg, a, std::move(c.state), std::move(c.journal));
          break;
        }
        if (c.status == claim_status::finished) {
          self->complete(gid, a, outcome_of(c.state), nullptr);
          break;
        }
        if (c.status == claim_status::not_found) throw std::runtime_error("wf: workflow '" + gid + "' vanished from the store");
        // Busy: another runner holds it. Wait for it to finish or its lease to lapse.
        poll.expires_after(std::min<std::chrono::milliseconds>(self->options.lease_duration / 4, std::chrono::seconds(1)));
        boost::system::error_code ec;
        co_await poll.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        self->check_running();
      }
    }
  } catch (...) {
    self->complete(gid, a, std::nullopt, std::current_exception());
  }
  co_return a;
}

asio::awaitable<std::size_t> runtime::recover() {
  auto self = impl_;
  self->check_running();
  auto* scheduling = self->st->scheduling();
  if (!scheduling) throw std::logic_error("wf: this store cannot find workflows to recover");
  ++self->recovering;
  std::size_t resumed = 0;
  std::exception_ptr error;
  try {
    // The workflows running here already are left alone; the rest is claimed
    // in pages in gid order, so that none is claimed twice.
    const auto batch = std::max<std::size_t>(1, self->options.recovery_batch);
    auto request = self->claims(batch);
    for (;;) {
      // Each page leaves out what runs here now, the pages before included: a
      // claim of a running workflow would bump its epoch and fence its attempt.
      request.exclude.clear();
      for (const auto& [gid, a] : self->active) request.exclude.push_back(gid);
      auto claimed = co_await scheduling->claim_resumable(request);
      for (auto& c : claimed)
        if (self->adopt(c)) ++resumed;
      if (claimed.size() < batch || self->shutting_down) break;
      request.after = claimed.back().state.gid;
    }
  } catch (...) {
    error = std::current_exception();
  }
  if (--self->recovering == 0) detail::wake_all(self->ex, self->recovery_waiters);
  if (error) std::rethrow_exception(error);
  co_return resumed;
}

asio::awaitable<std::optional<workflow_state>> runtime::status(std::string gid) {
  auto self = impl_;
  co_return co_await self->st->find(std::move(gid));
}

asio::awaitable<void> runtime::shutdown(std::chrono::milliseconds grace) {
  auto self = impl_;
  if (self->shutting_down) co_return;
  self->shutting_down = true;
  stop();
  self->new_work.reset();
  detail::wake_all(self->ex, self->recovery_waiters);
  for (auto& [gid, a] : self->active) a->request_stop(detail::attempt::stop_cause::shutdown);

  if (!self->active.empty()) {
    // Wait for them to stop, at most `grace`.
    asio::steady_timer deadline(self->ex);
    deadline.expires_after(grace);
    auto on_deadline = [self](boost::system::error_code ec) {
      if (!ec && self->drained) detail::post_completion(self->ex, self->drained.take());
    };
    deadline.async_wait(on_deadline);
    auto init = [self](auto handler) { self->drained.set(std::move(handler)); };
    co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(init, asio::use_awaitable);
  }
  // Give back what was stopped, and what is still stopping past the grace.
  auto gids = std::move(self->stopped);
  for (const auto& [gid, a] : self->active) gids.push_back(gid);
  if (!gids.empty()) co_await self->st->release(self->options.executor_id, std::move(gids));
}

std::chrono::milliseconds retry_policy::next_interval(std::chrono::milliseconds previous, bool grow) const noexcept {
  if (previous.count() <= 0) return std::min(initial_interval, max_interval);
  if (!grow) return previous;
  const double next = static_cast<double>(previous.count()) * coefficient;
  const double cap = static_cast<double>(max_interval.count());
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::min(next, cap)));
}

}  // namespace wf
