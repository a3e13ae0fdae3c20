// Driving one workflow: attempts until it finishes, backing off between
// them, and closing it (a rollback) once it has run out of attempts or time.
#include "core.hpp"

#include <boost/asio/this_coro.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace asio = boost::asio;

namespace wf {

namespace {

using result_kind = detail::attempt_result::kind;

// Why the workflow must now roll back instead of trying again, if it must.
// The reason is journaled and compared across replays, so it holds no
// timing-dependent figure for a deadline (the attempt count is on the status).
std::optional<std::string> out_of_attempts(const workflow_state& state, const detail::registration& reg) {
  const auto max = reg.options.retry.max_attempts;
  if (max != 0 && state.attempts >= max)
    return "retries exhausted after " + std::to_string(state.attempts) + " attempt(s); last error: " + state.last_error;
  return std::nullopt;
}

std::optional<std::string> closing_reason(const workflow_state& state, const detail::registration& reg,
                                          wall_clock::time_point now) {
  if (state.deadline && now >= *state.deadline) return "deadline exceeded; last error: " + state.last_error;
  return out_of_attempts(state, reg);
}

detail::attempt_result stuck_result(const std::string& reason) {
  detail::attempt_result r;
  r.what = result_kind::stuck;
  r.error = reason;
  r.exception = std::make_exception_ptr(workflow_stuck_error(reason));
  return r;
}

asio::awaitable<detail::attempt_result> run_attempt(runtime::impl& self, const detail::registration& reg,
                                                    runtime::active& a, const workflow_state& state,
                                                    std::vector<journal_record> journal,
                                                    std::optional<std::string> closing) {
  // (Few locals: this frame lives as long as the workflow runs.)
  std::optional<detail::attempt> at;
  try {
    at.emplace(self.env(), reg, state, std::move(journal), std::move(closing));
  } catch (const detail::corrupt_journal_error& e) {
    co_return stuck_result(e.what());
  }
  struct current {
    runtime::active& a;
    ~current() { a.current = nullptr; }
  } guard{a};
  a.current = &*at;
  if (a.stop) at->stop(*a.stop);
  co_return co_await at->run();
}

// A bug: the workflow is marked stuck (best effort: the journal is left as it
// is either way, and a workflow whose mark failed is found stuck again).
asio::awaitable<void> mark_stuck(runtime::impl& self, const workflow_state& state, const std::string& reason) {
  write w{state.gid, state.epoch, {}, detail::progress_of(state, workflow_status::stuck, reason)};
  try {
    co_await detail::commit_one(*self.st, std::move(w));
  } catch (const std::exception&) {
  }
}

attempt_end ending_of(result_kind k) {
  switch (k) {
    case result_kind::finished: return attempt_end::finished;
    case result_kind::transient: return attempt_end::transient;
    case result_kind::stuck: return attempt_end::stuck;
    case result_kind::lease_lost: return attempt_end::lease_lost;
    case result_kind::stopped: return attempt_end::stopped;
  }
  return attempt_end::transient;
}

std::exception_ptr shutdown_error_of(const std::string& gid) {
  return std::make_exception_ptr(
      shutdown_error("wf: the runtime shut down; workflow '" + gid + "' was given back to the store"));
}

// Waits until `until` on the runtime's clock, or until the workflow is asked
// to stop (which cancels the driver's coroutine, and so this wait).
asio::awaitable<void> wait_until(runtime::impl& self, wall_clock::time_point until) {
  try {
    co_await self.clock->wait_until(until);
  } catch (const boost::system::system_error&) {
  }
}

// After a transient error: note it on the workflow's status, wait (unless it
// must now be closed), and re-read the journal: the last write's outcome may
// be unknown, and nothing is decided on a journal that was not re-read.
// Returns the journal, or nothing if the workflow was claimed by another
// runner or asked to stop.
asio::awaitable<std::optional<std::vector<journal_record>>> back_off(runtime::impl& self,
                                                                     const detail::registration& reg,
                                                                     runtime::active& a, workflow_state& state,
                                                                     std::string error,
                                                                     std::chrono::milliseconds& interval,
                                                                     std::optional<std::string>& closing) {
  for (bool retry = false;; retry = true) {
    if (a.stop) co_return std::nullopt;
    state.attempts += 1;
    state.last_error = error;
    state.next_attempt_at = self.clock->now() + interval;
    bool just_closed = false;
    if (!closing) {
      closing = closing_reason(state, reg, self.clock->now());
      just_closed = closing.has_value();
    }
    bool fenced = false;
    write w{state.gid, state.epoch, {}, detail::progress_of(state, workflow_status::running, {})};
    try {
      fenced = co_await detail::commit_one(*self.st, std::move(w)) != write_status::ok;
    } catch (const std::exception& e) {
      error = std::string("store: ") + e.what();
    }
    if (fenced || a.stop) co_return std::nullopt;
    // Just out of attempts or time: no wait, the next attempt closes the
    // workflow. Any other transient error (a handler failing in the rollback
    // that closing started, the store failing) waits as usual.
    if (retry || !just_closed) co_await wait_until(self, state.next_attempt_at);
    if (a.stop) co_return std::nullopt;
    try {
      co_return co_await self.st->journal(state.gid);
    } catch (const std::exception& e) {
      error = std::string("store: ") + e.what();
      interval = reg.options.retry.next_interval(interval, true);
    }
  }
}

// A workflow this runner was fenced from may have been finished meanwhile -
// by the runner that took it over, or by this one, whose last write landed
// though it was reported as failed: then the callers get its outcome.
asio::awaitable<bool> finished_elsewhere(runtime::impl& self, const std::string& gid,
                                         const std::shared_ptr<runtime::active>& a) {
  std::optional<workflow_state> s;
  try {
    s = co_await self.st->find(gid);
  } catch (const std::exception&) {
    co_return false;
  }
  if (!s || !s->finished()) co_return false;
  if (s->status == workflow_status::stuck) {
    self.complete(gid, a, std::nullopt,
                  std::make_exception_ptr(workflow_stuck_error("wf: workflow '" + gid + "' is stuck: " + s->result)));
  } else {
    outcome o;
    o.status = s->status;
    (s->status == workflow_status::succeeded ? o.result : o.reason) = s->result;
    self.complete(gid, a, std::move(o), nullptr);
  }
  co_return true;
}

}  // namespace

void runtime::impl::start(const detail::registration& reg, std::shared_ptr<runtime::active> a, workflow_state state,
                          std::vector<journal_record> journal) {
  a->held = true;
  // The signal goes only after the coroutine's end is all done (its end still
  // clears the slot): the completion hands it to a later turn of the executor.
  auto cancel = a->cancel;
  auto slot = cancel->slot();
  auto done = [ex = ex, cancel = std::move(cancel)](std::exception_ptr) mutable {
    asio::post(ex, [keep = std::move(cancel)] {});
  };
  asio::co_spawn(ex, drive(shared_from_this(), reg, std::move(a), std::move(state), std::move(journal)),
                 asio::bind_cancellation_slot(slot, std::move(done)));
}

// Its frame is what a workflow keeps between attempts, so the rarer paths
// live in coroutines of their own that finish before it waits.
asio::awaitable<void> runtime::impl::drive(std::shared_ptr<impl> self, const detail::registration& reg,
                                           std::shared_ptr<runtime::active> a, workflow_state state,
                                           std::vector<journal_record> journal) {
  // A stop cancels what this coroutine waits for at that moment (an action,
  // a handler, a backoff); what it awaits afterwards (the journal writes that
  // finish the run) must not be refused for it.
  co_await asio::this_coro::throw_if_cancelled(false);
  std::chrono::milliseconds interval{0};
  // Set once the workflow has run out of attempts or time (checked after a
  // transient error, with that error in the reason): from then on every
  // attempt closes it. A workflow taken over after its last attempt was
  // counted (and before its decision was written) closes at once.
  std::optional<std::string> closing = out_of_attempts(state, reg);
  const workflow_ref ref{state.gid, state.name};
  for (;;) {
    const auto number = state.attempts + 1;
    detail::notify(self->obs(), [&](observer& o) { o.attempt_started(ref, number, closing.has_value()); });
    auto r = co_await run_attempt(*self, reg, *a, state, std::move(journal), closing);
    if (r.what != result_kind::transient)
      detail::notify(self->obs(), [&](observer& o) { o.attempt_ended(ref, number, ending_of(r.what), r.error, {}); });
    switch (r.what) {
      case result_kind::finished:
        detail::notify(self->obs(), [&](observer& o) {
          o.workflow_finished(ref, r.out.status, r.out.succeeded() ? r.out.result : r.out.reason);
        });
        self->complete(state.gid, a, std::move(r.out), nullptr);
        co_return;
      case result_kind::stuck:
        detail::notify(self->obs(), [&](observer& o) { o.workflow_finished(ref, workflow_status::stuck, r.error); });
        co_await mark_stuck(*self, state, r.error);
        self->complete(state.gid, a, std::nullopt, r.exception);
        co_return;
      case result_kind::lease_lost:
        if (!co_await finished_elsewhere(*self, state.gid, a)) self->complete(state.gid, a, std::nullopt, r.exception);
        co_return;
      case result_kind::stopped:
        self->stopped.push_back(state.gid);
        self->complete(state.gid, a, std::nullopt, shutdown_error_of(state.gid));
        co_return;
      case result_kind::transient:
        break;
    }
    interval = reg.options.retry.next_interval(interval, !r.ongoing);
    const auto next_at = self->clock->now() + interval;
    detail::notify(self->obs(), [&](observer& o) {
      o.attempt_ended(ref, number, attempt_end::transient, r.error, next_at);
    });
    auto next = co_await back_off(*self, reg, *a, state, std::move(r.error), interval, closing);
    if (!next) {
      if (a->stop == detail::attempt::stop_cause::shutdown) {
        self->stopped.push_back(state.gid);
        self->complete(state.gid, a, std::nullopt, shutdown_error_of(state.gid));
      } else if (!co_await finished_elsewhere(*self, state.gid, a)) {
        self->complete(state.gid, a, std::nullopt,
                       std::make_exception_ptr(lease_lost_error("wf: workflow '" + state.gid +
                                                                "' was claimed by another runner")));
      }
      co_return;
    }
    journal = std::move(*next);
  }
}

}  // namespace wf
