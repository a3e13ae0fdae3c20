#include "attempt.hpp"
#include "../text.hpp"

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <charconv>

namespace asio = boost::asio;

namespace wf::detail {

namespace {
// Thrown into the workflow code when it reaches an operation that must not
// run: the forward phase is decided (or being closed). Not a std::exception,
// so that `catch (const std::exception&)` lets it through.
struct halt_signal {};
// Thrown into the workflow code when the runtime stops the run (shutdown).
struct stop_signal {};

// "01", "02", ... "99", "100": at least two digits. Returns the length.
std::uint8_t write_branch_id(char (&out)[11], std::uint32_t id) {
  char* p = out;
  if (id < 10) *p++ = '0';
  p = std::to_chars(p, out + sizeof out, id).ptr;
  return static_cast<std::uint8_t>(p - out);
}

const handler no_handler;

std::string_view op_name(record_kind k) {
  switch (k) {
    case record_kind::commit: return "commit";
    case record_kind::rollback: return "rollback";
    case record_kind::finish: return "finish";
    default: return "action";
  }
}

bool is_ongoing(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const ongoing&) {
    return true;
  } catch (...) {
    return false;
  }
}
}  // namespace

call_end call_end_of(error_kind kind, const std::exception_ptr& e) {
  switch (kind) {
    case error_kind::business: return call_end::failure;
    case error_kind::bug: return call_end::bug;
    case error_kind::transient: return is_ongoing(e) ? call_end::ongoing : call_end::transient;
  }
  return call_end::transient;
}

std::string message_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
}

asio::awaitable<write_status> commit_one(store& s, write w) {
  // A write, once started, finishes: a stop (the cancellation of the
  // workflow's coroutine) must not cut it short, which would leave its
  // outcome in doubt for nothing. Cancellation comes back on afterwards.
  // (The cancellation state belongs to the whole chain of coroutines this
  // one runs in, so setting it here holds for the store's coroutine too.)
  co_await asio::this_coro::reset_cancellation_state(asio::disable_cancellation());
  std::vector<write> batch;
  batch.push_back(std::move(w));
  std::exception_ptr error;
  write_status status = write_status::ok;
  try {
    auto statuses = co_await s.commit(std::move(batch));
    status = statuses.at(0);
  } catch (...) {
    error = std::current_exception();
  }
  co_await asio::this_coro::reset_cancellation_state();
  if (error) std::rethrow_exception(error);
  co_return status;
}

attempt::attempt(attempt_env env, const registration& reg, const workflow_state& state,
                 std::vector<journal_record> journal, std::optional<std::string> closing_reason)
    : env_(env),
      reg_(reg),
      state_(state),
      engine_(state.gid, std::move(journal), reg.options.compensate_failed_branch, closing_reason.has_value()),
      closing_reason_(std::move(closing_reason)) {}

// ---- what stops a run

namespace {
// False if the calling thread is not running `ex`, for the executors whose
// answer Asio can give (an io_context's, a thread pool's, a strand over
// either); true for other executors, which are not checked.
bool running_here(const asio::any_io_executor& ex) {
  if (const auto* e = ex.target<asio::io_context::executor_type>()) return e->running_in_this_thread();
  if (const auto* e = ex.target<asio::thread_pool::executor_type>()) return e->running_in_this_thread();
  if (const auto* e = ex.target<asio::strand<asio::io_context::executor_type>>()) return e->running_in_this_thread();
  if (const auto* e = ex.target<asio::strand<asio::thread_pool::executor_type>>()) return e->running_in_this_thread();
  if (const auto* e = ex.target<asio::strand<asio::any_io_executor>>()) return e->running_in_this_thread();
  return true;
}
}  // namespace

void attempt::check_thread() const {
  // Nothing of the attempt is touched from here: the caller is on a thread
  // that may race the workflow's own. The error reaches the code that made
  // the call; if it ends the workflow's code, the workflow is stuck (a bug).
  if (!running_here(env_.executor))
    throw std::logic_error("wf: workflow '" + state_.name + "' (gid '" + state_.gid +
                           "') was used from a thread that is not running its runtime's executor; use a "
                           "wf::workflow& only in the workflow's coroutine and the coroutines it awaits");
}

void attempt::check_can_go_on() const {
  if (stop_) std::rethrow_exception(stop_);
  if (bug_) std::rethrow_exception(bug_);
  if (transient_) std::rethrow_exception(transient_);
  if (broken_) std::rethrow_exception(broken_);
}

void attempt::note_bug(std::exception_ptr error, std::string reason) {
  if (bug_) return;
  bug_ = std::move(error);
  bug_reason_ = std::move(reason);
}

void attempt::stop_with_bug(std::exception_ptr error, std::string reason) {
  note_bug(std::move(error), std::move(reason));
  std::rethrow_exception(bug_);
}

void attempt::check_name(record_kind kind, const std::string& name) {
  std::string problem = name.empty() ? "is empty" : name_problem(name);
  if (problem.empty()) return;
  const std::string reason = "wf: the name of a " + std::string(to_string(kind)) + " " + problem;
  stop_with_bug(std::make_exception_ptr(std::invalid_argument(reason)), reason);
}

void attempt::misuse(const std::string& message) {
  stop_with_bug(std::make_exception_ptr(std::logic_error(message)), message);
}

void attempt::note_too_large(std::size_t size, const std::string& what) {
  const std::string reason = "wf: " + size_problem(what, size, max_payload_bytes);
  note_bug(std::make_exception_ptr(payload_too_large_error(reason)), reason);
}

void attempt::stop(stop_cause cause) {
  if (stop_) return;
  stop_cause_ = cause;
  if (cause == stop_cause::lease_lost)
    stop_ = std::make_exception_ptr(
        lease_lost_error("wf: workflow '" + state_.gid + "' was claimed by another runner (epoch " +
                         std::to_string(state_.epoch) + " is stale)"));
  else
    stop_ = std::make_exception_ptr(stop_signal{});
  // (The driver cancels the running actions and handler: they run in the
  // workflow's coroutines, which its cancellation reaches.)
  for (auto& s : ops_)
    if (!s->resolved && s->waiter) resolve(*s, stop_, {});
}

// ---- operations

attempt::op_slot& attempt::start_op(record_kind kind, branch_spec& spec, engine::start_result& started) {
  handler_set hs;
  hs.compensate_on_failure = spec.compensate_on_failure;
  if (const auto* h = spec.handlers.get()) {
    hs.on_rollback = static_cast<bool>(h->on_rollback);
    hs.on_commit = static_cast<bool>(h->on_commit);
    hs.on_finish = static_cast<bool>(h->on_finish);
  }
  try {
    started = engine_.start(kind, spec.name, hs);
  } catch (const nondeterminism_error& e) {
    stop_with_bug(std::current_exception(), e.what());
  }
  auto& s = *ops_.emplace_back(std::make_unique<op_slot>());
  s.id = started.op;
  s.kind = kind;
  s.name = std::move(spec.name);
  if (started.branch) s.branch_size = write_branch_id(s.branch_text, started.branch);
  if (hs.any()) s.handlers = std::move(spec.handlers);
  return s;
}

const handler& attempt::op_slot::handler_for(record_kind k) const noexcept {
  if (!handlers) return no_handler;
  return k == record_kind::commit ? handlers->on_commit
         : k == record_kind::rollback ? handlers->on_rollback
                                      : handlers->on_finish;
}

// The action runs here, in the coroutine that awaits the branch (the
// workflow's, or one that wf::when_all started): nothing to spawn, and the
// action is cancelled with that coroutine (stop() cancels the workflow's,
// when_all passes it on).
asio::awaitable<std::string> attempt::run_branch(record_kind kind, branch_spec spec, raw_action action) {
  check_thread();
  check_can_go_on();
  check_name(kind, spec.name);
  engine::start_result started;
  auto& s = start_op(kind, spec, started);
  if (started.what == engine::start_kind::replay) {
    if (started.record->failed) throw failure(started.record->payload);
    co_return started.record->payload;
  }
  if (started.what == engine::start_kind::halt) {
    halted_ = true;
    throw halt_signal{};
  }
  s.running = true;
  ++actions_running_;
  const branch_context ctx{state_.gid, s.branch_id(), "action", s.name};
  const auto called = env_.obs ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  notify(env_.obs, [&](observer& o) { o.call_started(ref(), ctx); });
  std::exception_ptr error;
  std::string payload;
  try {
    payload = co_await action(ctx);
  } catch (...) {
    error = std::current_exception();
  }
  if (env_.obs) {
    const auto how = error ? call_end_of(env_.classify(error), error) : call_end::ok;
    const std::string message = error ? message_of(error) : std::string();
    notify(env_.obs, [&](observer& o) {
      o.call_ended(ref(), ctx, how, std::chrono::steady_clock::now() - called, message);
    });
  }
  s.running = false;
  --actions_running_;
  if (settle_action(s, error, std::move(payload))) co_await flush();
  if (!s.resolved) co_await resolved(s);
  co_return take_outcome(s);
}

asio::awaitable<std::string> attempt::record_value(std::string name, std::function<std::string()> fn) {
  check_thread();
  check_can_go_on();
  check_name(record_kind::value, name);
  branch_spec spec;
  spec.name = std::move(name);
  engine::start_result started;
  auto& s = start_op(record_kind::value, spec, started);
  if (started.what == engine::start_kind::replay) co_return started.record->payload;
  if (started.what == engine::start_kind::halt) {
    halted_ = true;
    throw halt_signal{};
  }
  std::string value;
  try {
    value = fn();
  } catch (...) {
    // As for a branch: an error the code swallows still ends the run (a bug
    // stops the workflow), so that a replay cannot take another path on it.
    auto e = std::current_exception();
    engine_.unknown(s.id);
    if (env_.classify(e) == error_kind::bug)
      note_bug(e, describe(record_kind::value, s.name, s.id) + ": " + message_of(e));
    else if (!transient_)
      transient_ = e;
    throw;
  }
  if (too_large(value.size(), [&] { return "the value '" + s.name + "'"; })) {
    engine_.unknown(s.id);
    std::rethrow_exception(bug_);
  }
  if (enqueue(engine_.outcome(s.id, false, std::move(value)), s.id)) co_await flush();
  if (!s.resolved) co_await resolved(s);
  co_return take_outcome(s);
}

bool attempt::settle_action(op_slot& s, std::exception_ptr error, std::string payload) {
  bool failed = false;
  if (error) {
    switch (env_.classify(error)) {
      case error_kind::business:
        failed = true;
        payload = message_of(error);
        break;
      case error_kind::bug:
        note_bug(error, describe(s.kind, s.name, s.id) + ": " + message_of(error));
        settle_unknown(s, error);
        return false;
      case error_kind::transient:
        if (!transient_) {
          transient_ = error;
          transient_ongoing_ = is_ongoing(error);
        }
        settle_unknown(s, error);
        return false;
    }
  }
  if (stop_ || broken_) {
    settle_unknown(s, stop_ ? stop_ : broken_);
    return false;
  }
  if (too_large(payload.size(), [&] { return "the outcome of " + describe(s.kind, s.name, s.id); })) {
    settle_unknown(s, bug_);
    return false;
  }
  return enqueue(engine_.outcome(s.id, failed, std::move(payload)), s.id);
}

void attempt::settle_unknown(op_slot& s, std::exception_ptr error) {
  engine_.unknown(s.id);
  resolve(s, std::move(error), {});
  notify_quiet();
}

void attempt::resolve(op_slot& s, std::exception_ptr error, std::string value) {
  if (s.resolved) return;
  s.resolved = true;
  s.error = std::move(error);
  s.value = std::move(value);
  if (s.waiter) post_completion(env_.executor, s.waiter.take());
}

asio::awaitable<void> attempt::resolved(op_slot& s) {
  // Its record goes in a write another coroutine is making: wait for it.
  auto init = [&s](auto handler) { s.waiter.set(std::move(handler)); };
  return asio::async_initiate<const asio::use_awaitable_t<>&, void()>(init, asio::use_awaitable);
}

std::string attempt::take_outcome(op_slot& s) {
  if (s.error) std::rethrow_exception(s.error);
  return std::move(s.value);
}

// ---- the append queue

bool attempt::enqueue(journal_record record, std::uint32_t op) {
  queue_.push_back({std::move(record), op});
  if (writing_) return false;  // the coroutine writing now takes it in its next write
  writing_ = true;
  return true;
}

// Made by the coroutine whose outcome found no write in progress: one write
// at a time, and what queues up meanwhile (outcomes of branches running in
// parallel) goes in the next one, until nothing is left. run() waits for it
// (quiet()) before the attempt can end.
asio::awaitable<void> attempt::flush() {
  while (!queue_.empty()) {
    // (The two vectors trade places, keeping their capacity.)
    std::vector<queued> batch = std::move(spare_);
    batch.clear();
    batch.swap(queue_);
    if (stop_ || broken_ || bug_) {
      for (auto& q : batch) settle_unknown(*slot(q.op), stop_ ? stop_ : broken_ ? broken_ : bug_);
      continue;
    }
    write w{state_.gid, state_.epoch, {}, std::nullopt};
    // The commands of the operations still in flight go first (the write is
    // made anyway: they cost no write of their own).
    std::vector<journal_record> commands = engine_.commands();
    w.records.reserve(commands.size() + batch.size());
    for (auto& c : commands) {
      c.seq = engine_.next_seq() + static_cast<std::uint32_t>(w.records.size());
      w.records.push_back(c);
    }
    for (auto& q : batch) {
      q.record.seq = engine_.next_seq() + static_cast<std::uint32_t>(w.records.size());
      w.records.push_back(q.record);  // the queue keeps the payload for the waiting code
    }
    write_status status = write_status::ok;
    std::exception_ptr error;
    const auto written = env_.obs ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    try {
      status = co_await commit_one(env_.st, std::move(w));
    } catch (...) {
      error = std::current_exception();
    }
    if (!error && status == write_status::ok)
      notify(env_.obs, [&](observer& o) { o.journal_written(ref(), batch.size(), std::chrono::steady_clock::now() - written); });
    if (error || status != write_status::ok) {
      if (error)
        broken_ = error;  // the write may or may not have landed: this run writes nothing more
      else if (!stop_)
        stop(stop_cause::lease_lost);
      for (auto& q : batch) settle_unknown(*slot(q.op), error ? error : stop_);
      continue;
    }
    // The payloads go to the waiting code (resolve() resumes it later, not
    // here), the rest of the records to the engine.
    for (auto& c : commands) engine_.appended(std::move(c));
    for (auto& q : batch) {
      auto& s = *slot(q.op);
      if (q.record.failed)
        resolve(s, std::make_exception_ptr(failure(q.record.payload)), {});
      else
        resolve(s, nullptr, std::move(q.record.payload));
      q.record.payload.clear();
      engine_.appended(std::move(q.record));
    }
    spare_ = std::move(batch);
  }
  writing_ = false;
  notify_quiet();
}

bool attempt::quiet() const noexcept { return actions_running_ == 0 && !writing_ && queue_.empty(); }

void attempt::notify_quiet() {
  if (quiet() && quiet_waiter_) post_completion(env_.executor, quiet_waiter_.take());
}

asio::awaitable<void> attempt::settle() {
  while (!quiet()) {
    auto init = [this](auto handler) { quiet_waiter_.set(std::move(handler)); };
    co_await asio::async_initiate<const asio::use_awaitable_t<>&, void()>(init, asio::use_awaitable);
  }
}

// ---- the run, and the end of the forward phase

// The workflow code runs (and may park) inside this frame: what comes after
// it returns lives in other functions, so that a parked workflow holds
// little (a coroutine's frame has room for every temporary in it).
asio::awaitable<attempt_result> attempt::run() {
  workflow w(*this);
  code_end end;
  try {
    end.value = co_await reg_.fn(w, state_.input);
    end.how = ending::returned;
  } catch (...) {
    end = code_end_of(std::current_exception());
  }
  co_return co_await after_code(std::move(end));
}

attempt::code_end attempt::code_end_of(const std::exception_ptr& e) {
  code_end end;
  try {
    std::rethrow_exception(e);
  } catch (const halt_signal&) {
    end.how = ending::halted;
  } catch (const stop_signal&) {
    end.how = ending::stopped;
  } catch (...) {
    end.value = message_of(e);
    switch (env_.classify(e)) {
      case error_kind::business: end.how = ending::business; break;
      case error_kind::transient:
        end.how = ending::transient;
        end.ongoing = is_ongoing(e);
        break;
      case error_kind::bug:
        end.how = ending::bug;
        note_bug(e, end.value);
        break;
    }
  }
  return end;
}

asio::awaitable<attempt_result> attempt::after_code(code_end end) {
  // Nothing is abandoned: actions still running finish and are journaled.
  co_await settle();
  co_return co_await conclude(end.how, std::move(end.value), end.ongoing);
}

attempt_result attempt::stop_result() const {
  attempt_result r;
  if (stop_cause_ == stop_cause::shutdown) {
    r.what = attempt_result::kind::stopped;
    r.error = "stopped by shutdown";
    return r;
  }
  if (stop_) {
    r.what = attempt_result::kind::lease_lost;
    r.error = message_of(stop_);
    r.exception = stop_;
    return r;
  }
  r.what = attempt_result::kind::stuck;
  r.error = bug_reason_;
  r.exception = bug_;
  return r;
}

attempt_result attempt::transient_result(std::string error, bool ongoing) const {
  attempt_result r;
  r.what = attempt_result::kind::transient;
  r.error = std::move(error);
  r.ongoing = ongoing;
  return r;
}

asio::awaitable<attempt_result> attempt::conclude(ending how, std::string value, bool ongoing_answer) {
  if (stop_ || bug_) co_return stop_result();
  // A store error: the end of the journal is unknown; never decide on it.
  if (broken_) co_return transient_result("store: " + message_of(broken_), false);
  if (transient_ && how != ending::transient) {
    // The code went on after a transient error (swallowed it, or other
    // branches ended it): that operation's outcome is unknown, so the run
    // still counts as failed transiently.
    how = ending::transient;
    value = message_of(transient_);
    ongoing_answer = transient_ongoing_;
  }

  // Closing: an operation was halted (not run), so the code did not really
  // finish, whatever it did with the halt: the workflow rolls back.
  if (closing_reason_ && halted_ && !engine_.decision())
    co_return co_await finish(engine_.decide(false, *closing_reason_), true);

  if (how == ending::returned || how == ending::business) {
    if (const auto* r = engine_.unreached()) {
      nondeterminism_error e(state_.gid, "the end of the workflow", describe(r->kind, r->name, r->op));
      note_bug(std::make_exception_ptr(e), e.what());
      co_return stop_result();
    }
  }

  // A journaled decision is final: this run only rebuilt the handler list.
  if (const auto* d = engine_.decision()) co_return co_await finish(*d, false);

  if (how == ending::returned) {
    if (too_large(value.size(), [] { return std::string("the workflow's result"); })) co_return stop_result();
    co_return co_await finish(engine_.decide(true, std::move(value)), true);
  }
  if (how == ending::business) co_return co_await finish(engine_.decide(false, std::move(value)), true);
  if (closing_reason_) co_return co_await finish(engine_.decide(false, *closing_reason_), true);
  co_return transient_result(std::move(value), ongoing_answer);
}

asio::awaitable<void> attempt::append(std::vector<journal_record> records, std::optional<progress> p) {
  // The engine keeps the records without their payloads; the payloads go to
  // the store alone (no copy of them is made).
  std::vector<journal_record> kept;
  kept.reserve(records.size());
  for (auto& r : records) {
    r.seq = engine_.next_seq() + static_cast<std::uint32_t>(&r - records.data());
    kept.push_back({r.seq, r.kind, r.name, r.branch, r.failed, {}, r.op, r.in_flight, r.pending});
  }
  const auto count = records.size();
  write w{state_.gid, state_.epoch, std::move(records), std::move(p)};
  const auto written = env_.obs ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  const auto status = co_await commit_one(env_.st, std::move(w));
  if (status == write_status::ok)
    notify(env_.obs, [&](observer& o) { o.journal_written(ref(), count, std::chrono::steady_clock::now() - written); });
  if (status != write_status::ok) {
    stop(stop_cause::lease_lost);
    std::rethrow_exception(stop_);
  }
  for (auto& r : kept) engine_.appended(std::move(r));
}

asio::awaitable<attempt_result> attempt::finish(journal_record decision, bool record_decision) {
  const bool commit = !decision.failed;
  const auto todo = engine_.plan(decision);
  const workflow_status final_status = commit ? workflow_status::succeeded : workflow_status::failed;
  attempt_result res;
  res.what = attempt_result::kind::finished;
  res.out.status = final_status;
  (commit ? res.out.result : res.out.reason) = decision.payload;
  const std::string payload = decision.payload;

  try {
    if (record_decision || todo.empty()) {
      // A new decision goes with the commands of the operations it names as
      // in flight, if no write carried them yet.
      std::vector<journal_record> records;
      if (record_decision) {
        records = engine_.commands();
        records.push_back(std::move(decision));
      }
      // (Temporaries are kept out of co_await expressions: GCC 12 mishandles some.)
      std::optional<progress> p;
      if (todo.empty()) p = progress_of(state_, final_status, payload);
      co_await append(std::move(records), std::move(p));
    }
    for (std::size_t i = 0; i < todo.size(); ++i) {
      if (stop_) co_return stop_result();
      const auto& h = todo[i];
      auto& s = *slot(h.op);
      const auto& fn = s.handler_for(h.kind);
      const branch_context ctx{state_.gid, s.branch_id(), op_name(h.kind), s.name};
      std::exception_ptr error;
      const auto called = env_.obs ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
      notify(env_.obs, [&](observer& o) { o.call_started(ref(), ctx); });
      try {
        co_await fn(ctx);
      } catch (...) {
        error = std::current_exception();
      }
      if (env_.obs) {
        const auto how = error ? call_end_of(env_.classify(error), error) : call_end::ok;
        const std::string message = error ? message_of(error) : std::string();
        notify(env_.obs, [&](observer& o) {
          o.call_ended(ref(), ctx, how, std::chrono::steady_clock::now() - called, message);
        });
      }
      if (stop_) co_return stop_result();
      if (error) {
        const auto what = std::string(op_name(h.kind)) + " handler of " + describe(record_kind::branch, s.name, h.op) +
                          " failed: " + message_of(error);
        if (env_.classify(error) == error_kind::bug) {
          note_bug(error, what);
          co_return stop_result();
        }
        // Handlers must eventually succeed: retried with backoff, by replay.
        co_return transient_result(what, is_ongoing(error));
      }
      std::vector<journal_record> done;
      done.push_back(engine::handler_record(h));
      std::optional<progress> p;
      if (i + 1 == todo.size()) p = progress_of(state_, final_status, payload);
      co_await append(std::move(done), std::move(p));
    }
  } catch (...) {
    // Fenced (the lease was lost), or stopped meanwhile: nothing more is written.
    if (stop_) co_return stop_result();
    co_return transient_result("store: " + message_of(std::current_exception()), false);
  }
  co_return res;
}

}  // namespace wf::detail

// ---- wf::workflow and wf::workflow::branch: thin forwarding to the attempt.

namespace wf {

namespace detail {
asio::awaitable<std::string> run_branch(attempt* a, record_kind kind, branch_spec spec, raw_action action) {
  return a->run_branch(kind, std::move(spec), std::move(action));
}
asio::awaitable<std::string> record_value(attempt* a, std::string name, std::function<std::string()> fn) {
  return a->record_value(std::move(name), std::move(fn));
}
}  // namespace detail

const std::string& workflow::gid() const noexcept { return attempt_->gid(); }
const std::string& workflow::name() const noexcept { return attempt_->name(); }
bool workflow::replaying() const noexcept { return attempt_->replaying(); }

workflow::branch workflow::new_branch(std::string name) { return branch(*attempt_, std::move(name)); }

asio::awaitable<std::string> workflow::step_bytes(std::string name, raw_action action) {
  detail::branch_spec spec;
  spec.name = std::move(name);
  return detail::run_branch(attempt_, record_kind::step, std::move(spec), std::move(action));
}

asio::awaitable<std::string> workflow::record_bytes(std::string name, std::function<std::string()> fn) {
  return detail::record_value(attempt_, std::move(name), std::move(fn));
}

asio::awaitable<wall_clock::time_point> workflow::now() {
  std::function<std::string()> read = [&clock = attempt_->clock()] {
    return codec<std::int64_t>::encode(static_cast<std::int64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(clock.now().time_since_epoch()).count()));
  };
  const auto bytes = co_await record_bytes("now", std::move(read));
  const auto ns = codec<std::int64_t>::decode(bytes);
  co_return wall_clock::time_point(std::chrono::duration_cast<wall_clock::duration>(std::chrono::nanoseconds(ns)));
}

asio::awaitable<std::string> workflow::uuid() {
  return record_bytes("uuid", [&rng = attempt_->rng()] { return detail::random_uuid(rng); });
}

asio::awaitable<std::uint64_t> workflow::random() {
  return record("random", [&rng = attempt_->rng()] { return static_cast<std::uint64_t>(rng()); });
}

asio::awaitable<std::string> workflow::branch::run_bytes(raw_action action) {
  if (ran_) attempt_->misuse("wf: branch '" + spec_.name + "' was run twice; make a new one with new_branch()");
  ran_ = true;
  detail::branch_spec spec = std::move(spec_);
  spec_.name = spec.name;  // for the message, if it is run again
  return detail::run_branch(attempt_, record_kind::branch, std::move(spec), std::move(action));
}

}  // namespace wf
