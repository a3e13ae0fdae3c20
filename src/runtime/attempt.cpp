#include "attempt.hpp"
#include "../text.hpp"

#include <cstdio>

namespace wf::detail {

namespace {
// Thrown into the workflow code when it reaches past a journaled decision.
// Not a std::exception, so that `catch (const std::exception&)` lets it through.
struct halt_signal {};

std::string branch_id_text(std::uint32_t id) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02u", static_cast<unsigned>(id));
  return buf;
}

std::string_view op_name(record_kind k) {
  switch (k) {
    case record_kind::commit: return "commit";
    case record_kind::rollback: return "rollback";
    case record_kind::finish: return "finish";
    default: return "action";
  }
}

}  // namespace

boost::asio::awaitable<write_status> commit_one(store& s, write w) {
  std::vector<write> batch;
  batch.push_back(std::move(w));
  const auto status = co_await s.commit(std::move(batch));
  co_return status.at(0);
}

namespace {
std::string message_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
}
}  // namespace

attempt::attempt(store& s, const registration& reg, const workflow_state& state,
                 std::vector<journal_record> journal, std::mt19937_64& rng)
    : store_(s), reg_(reg), state_(state), cursor_(state.gid, std::move(journal)), rng_(rng) {}

void attempt::check_can_go_on() const {
  if (stop_) std::rethrow_exception(stop_);
  if (transient_) std::rethrow_exception(transient_);
  if (halted_) throw halt_signal{};
}

// Stops the workflow for good (it is marked stuck with `error`'s message).
void attempt::stop_with(std::exception_ptr error, std::string reason) {
  stop_ = std::move(error);
  stop_reason_ = std::move(reason);
  std::rethrow_exception(stop_);
}

replay_cursor::next_step attempt::next(record_kind kind, const std::string& name) {
  check_can_go_on();
  if (const auto problem = name_problem(name); !problem.empty()) {
    const std::string reason = "wf: the name of a " + std::string(to_string(kind)) + " " + problem;
    stop_with(std::make_exception_ptr(std::invalid_argument(reason)), reason);
  }
  try {
    return cursor_.next(kind, name);
  } catch (const nondeterminism_error& e) {
    stop_ = std::current_exception();
    stop_reason_ = e.what();
    throw;
  }
}

boost::asio::awaitable<void> attempt::append(std::vector<journal_record> records, std::optional<progress> p) {
  check_sizes(records, p);
  write w{state_.gid, state_.epoch, records, std::move(p)};
  const auto status = co_await commit_one(store_, std::move(w));
  if (status != write_status::ok) {
    stop_is_lease_ = true;
    if (status == write_status::fenced)
      stop_reason_ = "workflow '" + state_.gid + "' was claimed by another runner (epoch " +
                     std::to_string(state_.epoch) + " is stale)";
    else
      stop_reason_ = "journal of '" + state_.gid + "' changed under this runner";
    stop_ = std::make_exception_ptr(lease_lost_error(stop_reason_));
    std::rethrow_exception(stop_);
  }
  for (auto& r : records) cursor_.appended(std::move(r));
}

void attempt::check_sizes(const std::vector<journal_record>& records, const std::optional<progress>& p) {
  auto over = [&](std::size_t size, const std::string& what) {
    if (size <= max_payload_bytes) return;
    const std::string reason = "wf: " + size_problem(what, size, max_payload_bytes);
    stop_with(std::make_exception_ptr(payload_too_large_error(reason)), reason);
  };
  for (const auto& r : records) over(r.payload.size(), "the outcome of " + std::string(to_string(r.kind)) + " '" + r.name + "'");
  if (p) over(p->result.size(), "the workflow's result");
}

boost::asio::awaitable<void> attempt::append_one(journal_record r, std::optional<progress> p) {
  std::vector<journal_record> records;
  records.push_back(std::move(r));
  return append(std::move(records), std::move(p));
}

// Registers a reached branch's handlers; past a journaled decision, halts.
// Returns the branch's index in branches_, or npos if it has no handlers.
std::size_t attempt::reach(const replay_cursor::next_step& step, std::uint32_t id, const std::string& name,
                           branch_handlers handlers) {
  const bool has_handlers = handlers.on_rollback || handlers.on_commit || handlers.on_finish;
  if (step.kind == replay_cursor::next_kind::halt) {
    // Past the decision. The branch whose action was in flight when a
    // rollback was decided is compensated, exactly as in the run that decided.
    const auto* d = cursor_.decision();
    if (has_handlers && d->failed && d->branch == id)
      branches_.push_back({id, branch_id_text(id), name, std::move(handlers), branch_state::unknown});
    halted_ = true;
    throw halt_signal{};
  }
  if (!has_handlers) return npos;
  branches_.push_back({id, branch_id_text(id), name, std::move(handlers), branch_state::unknown});
  return branches_.size() - 1;
}

void attempt::settle(std::size_t index, bool failed) {
  if (index != npos) branches_[index].state = failed ? branch_state::failed : branch_state::succeeded;
}

// A parked workflow keeps this frame alive while its action runs, so it holds
// little: registering, replaying and journaling happen in helpers.
boost::asio::awaitable<std::string> attempt::run_branch(record_kind kind, std::string name, raw_action action,
                                                        branch_handlers handlers) {
  const auto step = next(kind, name);
  const auto id = cursor_.take_branch_id();
  const auto index = reach(step, id, name, std::move(handlers));
  if (step.kind == replay_cursor::next_kind::replayed) {
    settle(index, step.record->failed);
    if (step.record->failed) throw failure(step.record->payload);
    co_return step.record->payload;
  }

  // Fresh: call the action for real, then journal its outcome.
  const auto id_text = branch_id_text(id);
  const branch_context ctx{state_.gid, id_text, "action", name};
  std::string result;
  bool business = false;
  try {
    result = co_await action(ctx);
  } catch (const failure& f) {
    business = true;
    result = f.what();
  } catch (...) {
    in_flight_ = id;
    transient_ = std::current_exception();
    throw;
  }
  co_await record_outcome(step.seq, kind, name, id, business, result);
  settle(index, business);
  if (business) throw failure(result);
  co_return result;
}

boost::asio::awaitable<void> attempt::record_outcome(std::uint32_t seq, record_kind kind, const std::string& name,
                                                     std::uint32_t id, bool business, const std::string& result) {
  try {
    journal_record r{seq, kind, name, id, business, result};
    co_await append_one(std::move(r), std::nullopt);
  } catch (const lease_lost_error&) {
    throw;
  } catch (...) {
    // The store failed: the record may or may not be durable. This run ends;
    // the next one re-reads the journal.
    in_flight_ = id;
    transient_ = std::current_exception();
    throw;
  }
}

boost::asio::awaitable<std::string> attempt::record_value(std::string name, std::function<std::string()> fn) {
  const auto step = next(record_kind::value, name);
  if (step.kind == replay_cursor::next_kind::halt) {
    halted_ = true;
    throw halt_signal{};
  }
  if (step.kind == replay_cursor::next_kind::replayed) co_return step.record->payload;
  auto value = fn();
  co_await record_outcome(step.seq, record_kind::value, name, 0, false, value);
  co_return value;
}

bool attempt::forward_budget_spent() const {
  const auto max = reg_.options.retry.max_attempts;
  if (max != 0 && state_.attempts + 1 >= max) return true;
  return state_.deadline && wall_clock::now() >= *state_.deadline;
}

attempt_result attempt::stop_result() const {
  attempt_result r;
  r.what = stop_is_lease_ ? attempt_result::kind::lease_lost : attempt_result::kind::stuck;
  r.error = stop_reason_;
  r.exception = stop_;
  return r;
}

// The workflow code runs (and may park) inside this frame: what comes after
// it returns lives in conclude(), so that a parked workflow holds little.
boost::asio::awaitable<attempt_result> attempt::run() {
  workflow w(*this);
  ending how = ending::transient;
  std::string value;
  bool ongoing_answer = false;
  try {
    value = co_await reg_.fn(w, state_.input);
    how = ending::returned;
  } catch (const halt_signal&) {
    how = ending::halted;
  } catch (const failure& f) {
    how = ending::business;
    value = f.what();
  } catch (const ongoing& o) {
    value = o.what();
    ongoing_answer = true;
  } catch (...) {
    value = message_of(std::current_exception());
  }
  co_return co_await conclude(how, std::move(value), ongoing_answer);
}

boost::asio::awaitable<attempt_result> attempt::conclude(ending how, std::string value, bool ongoing_answer) {
  if (stop_) co_return stop_result();
  if (transient_ && how != ending::transient) {
    // The code swallowed a transient error and ended anyway: the run still
    // counts as failed transiently, since that branch is not journaled.
    how = ending::transient;
    value = message_of(transient_);
  }

  const bool ended = how == ending::returned || how == ending::business;
  if (ended) {
    if (const auto* r = cursor_.unreached()) {
      attempt_result res;
      res.what = attempt_result::kind::stuck;
      nondeterminism_error e(state_.gid, "the end of the workflow", describe(r->kind, r->name, r->seq));
      res.error = e.what();
      res.exception = std::make_exception_ptr(e);
      co_return res;
    }
  }

  // A journaled decision is final: this run only rebuilt the handler list.
  if (const auto* d = cursor_.decision()) co_return co_await finish(!d->failed, d->payload, false, d->branch);

  if (how == ending::returned) co_return co_await finish(true, std::move(value), true, 0);
  if (how == ending::business) co_return co_await finish(false, std::move(value), true, 0);
  if (forward_budget_spent()) {
    const bool deadline = state_.deadline && wall_clock::now() >= *state_.deadline;
    // The reason is journaled and compared across replays, so it holds no
    // timing-dependent figure for a deadline (the attempt count is on the status).
    std::string reason;
    if (deadline)
      reason = "deadline exceeded; last error: " + value;
    else
      reason = "retries exhausted after " + std::to_string(state_.attempts + 1) + " attempt(s); last error: " + value;
    co_return co_await finish(false, std::move(reason), true, in_flight_);
  }
  attempt_result r;
  r.what = attempt_result::kind::transient;
  r.error = std::move(value);
  r.ongoing = ongoing_answer;
  co_return r;
}

std::vector<attempt::planned_handler> attempt::plan(bool commit) const {
  std::vector<planned_handler> out;
  for (auto it = branches_.rbegin(); it != branches_.rend(); ++it) {
    const auto& b = *it;
    if (commit) {
      if (b.handlers.on_commit) out.push_back({record_kind::commit, &b});
      continue;
    }
    const bool compensate_failed =
        b.handlers.compensate_on_failure.value_or(reg_.options.compensate_failed_branch);
    if (b.handlers.on_rollback && (b.state != branch_state::failed || compensate_failed))
      out.push_back({record_kind::rollback, &b});
  }
  for (auto it = branches_.rbegin(); it != branches_.rend(); ++it)
    if (it->handlers.on_finish) out.push_back({record_kind::finish, &*it});
  return out;
}

boost::asio::awaitable<attempt_result> attempt::finish(bool commit, std::string payload, bool record_decision,
                                                       std::uint32_t in_flight) {
  std::vector<planned_handler> todo;
  for (const auto& h : plan(commit))
    if (!cursor_.handler_done(h.kind, h.branch->id)) todo.push_back(h);

  const workflow_status final_status = commit ? workflow_status::succeeded : workflow_status::failed;
  attempt_result res;
  res.what = attempt_result::kind::finished;
  res.out.status = final_status;
  (commit ? res.out.result : res.out.reason) = payload;

  try {
    if (record_decision || todo.empty()) {
      std::vector<journal_record> records;
      if (record_decision)
        records.push_back({cursor_.next_seq(), record_kind::decision, commit ? "commit" : "rollback", in_flight,
                           !commit, payload});
      // (Temporaries are kept out of co_await expressions: GCC 12 mishandles some.)
      std::optional<progress> p;
      if (todo.empty()) p = progress_of(state_, final_status, payload);
      co_await append(std::move(records), std::move(p));
    }
    for (std::size_t i = 0; i < todo.size(); ++i) {
      const auto& h = todo[i];
      const auto& b = *h.branch;
      const auto& fn = h.kind == record_kind::commit     ? b.handlers.on_commit
                       : h.kind == record_kind::rollback ? b.handlers.on_rollback
                                                         : b.handlers.on_finish;
      const branch_context ctx{state_.gid, b.id_text, op_name(h.kind), b.name};
      std::exception_ptr error;
      bool ongoing_answer = false;
      try {
        co_await fn(ctx);
      } catch (const ongoing&) {
        ongoing_answer = true;
        error = std::current_exception();
      } catch (...) {
        error = std::current_exception();
      }
      if (error) {
        // Handlers must eventually succeed: retried with backoff, by replay.
        attempt_result r;
        r.what = attempt_result::kind::transient;
        r.ongoing = ongoing_answer;
        r.error = std::string(op_name(h.kind)) + " handler of " + describe(record_kind::branch, b.name, b.id) +
                  " failed: " + message_of(error);
        co_return r;
      }
      journal_record done{cursor_.next_seq(), h.kind, b.name, b.id, false, {}};
      std::optional<progress> p;
      if (i + 1 == todo.size()) p = progress_of(state_, final_status, payload);
      co_await append_one(std::move(done), std::move(p));
    }
  } catch (const lease_lost_error&) {
    co_return stop_result();
  } catch (...) {
    attempt_result r;
    r.what = attempt_result::kind::transient;
    r.error = "store: " + message_of(std::current_exception());
    co_return r;
  }
  co_return res;
}

}  // namespace wf::detail

// ---- wf::workflow and wf::workflow::branch: thin forwarding to the attempt.

namespace wf {

const std::string& workflow::gid() const noexcept { return attempt_->gid(); }
const std::string& workflow::name() const noexcept { return attempt_->name(); }
bool workflow::replaying() const noexcept { return attempt_->replaying(); }

workflow::branch workflow::new_branch(std::string name) { return branch(*attempt_, std::move(name)); }

boost::asio::awaitable<std::string> workflow::step_bytes(std::string name, raw_action action) {
  return attempt_->run_branch(record_kind::step, std::move(name), std::move(action), {});
}

boost::asio::awaitable<std::string> workflow::record_bytes(std::string name, std::function<std::string()> fn) {
  return attempt_->record_value(std::move(name), std::move(fn));
}

boost::asio::awaitable<wall_clock::time_point> workflow::now() {
  auto ns = co_await record("now", [] {
    return static_cast<std::int64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(wall_clock::now().time_since_epoch()).count());
  });
  co_return wall_clock::time_point(std::chrono::duration_cast<wall_clock::duration>(std::chrono::nanoseconds(ns)));
}

boost::asio::awaitable<std::string> workflow::uuid() {
  return record_bytes("uuid", [&rng = attempt_->rng()] { return detail::random_uuid(rng); });
}

boost::asio::awaitable<std::uint64_t> workflow::random() {
  return record("random", [&rng = attempt_->rng()] { return static_cast<std::uint64_t>(rng()); });
}

workflow::branch& workflow::branch::on_rollback(handler h) {
  on_rollback_ = std::move(h);
  return *this;
}
workflow::branch& workflow::branch::on_commit(handler h) {
  on_commit_ = std::move(h);
  return *this;
}
workflow::branch& workflow::branch::on_finish(handler h) {
  on_finish_ = std::move(h);
  return *this;
}
workflow::branch& workflow::branch::compensate_on_failure(bool yes) {
  compensate_on_failure_ = yes;
  return *this;
}

boost::asio::awaitable<std::string> workflow::branch::run_bytes(raw_action action) {
  detail::attempt::branch_handlers h{std::move(on_rollback_), std::move(on_commit_), std::move(on_finish_),
                                     compensate_on_failure_};
  return attempt_->run_branch(record_kind::branch, std::move(name_), std::move(action), std::move(h));
}

}  // namespace wf
