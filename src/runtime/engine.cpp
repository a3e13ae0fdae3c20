#include "engine.hpp"

#include <wf/errors.hpp>

#include <algorithm>

namespace wf::detail {

std::string describe(record_kind kind, std::string_view name, std::uint32_t op) {
  std::string s(to_string(kind));
  s += " '";
  s += name;
  s += "' (operation ";
  s += std::to_string(op);
  s += ")";
  return s;
}

engine::engine(std::string gid, std::vector<journal_record> journal, bool compensate_failed_default, bool closing)
    : gid_(std::move(gid)),
      journal_(upgrade_journal(gid_, std::move(journal))),
      compensate_failed_default_(compensate_failed_default),
      closing_(closing) {
  for (std::size_t i = 0; i < journal_.size(); ++i) {
    const auto& r = journal_[i];
    const auto where = "journal of '" + gid_ + "', record #" + std::to_string(i + 1) + ": ";
    if (r.seq != i + 1) throw corrupt_journal_error(where + "sequence number " + std::to_string(r.seq));
    if (is_operation_record(r.kind)) {
      if (decision_) throw corrupt_journal_error(where + "an operation record after the decision");
      if (r.op == 0) throw corrupt_journal_error(where + "an operation record without an operation id");
      if (journaled(r.op)) throw corrupt_journal_error(where + "operation " + std::to_string(r.op) + " journaled twice");
      if (r.pending && (r.kind == record_kind::value || r.failed))
        throw corrupt_journal_error(where + "a pending " + std::string(to_string(r.kind)) +
                                    (r.failed ? " marked as failed" : ""));
    } else if (r.kind == record_kind::completion) {
      if (decision_) throw corrupt_journal_error(where + "a completion after the decision");
      const auto* command = journaled(r.op);
      if (!command || !command->pending)
        throw corrupt_journal_error(where + "a completion of operation " + std::to_string(r.op) +
                                    ", which has no pending record before it");
      if (outcome_of(r.op))
        throw corrupt_journal_error(where + "operation " + std::to_string(r.op) + " completed twice");
      if (r.name != command->name || r.branch != command->branch)
        throw corrupt_journal_error(where + "a completion of operation " + std::to_string(r.op) + " as '" + r.name +
                                    "', which was started as '" + command->name + "'");
    } else if (r.kind == record_kind::decision) {
      if (decision_) throw corrupt_journal_error(where + "a second decision");
    } else if (is_handler_record(r.kind)) {
      if (!decision_) throw corrupt_journal_error(where + "a handler record before the decision");
      const auto& d = journal_[*decision_];
      const bool in_flight = std::find(d.in_flight.begin(), d.in_flight.end(), r.op) != d.in_flight.end();
      if (!outcome_of(r.op) && !in_flight)
        throw corrupt_journal_error(where + "a handler record for operation " + std::to_string(r.op) +
                                    ", which neither finished nor was in flight");
    } else {
      throw corrupt_journal_error(where + "unknown record kind " + std::to_string(static_cast<int>(r.kind)) +
                                  " (written by a newer version?)");
    }
    index(r, i);
  }
  size_ = static_cast<std::uint32_t>(journal_.size());
}

void engine::index(const journal_record& r, std::size_t position) {
  if (is_operation_record(r.kind)) {
    if (by_op_.size() < r.op) by_op_.resize(r.op, 0);
    by_op_[r.op - 1] = position + 1;
    ++journaled_ops_;
  } else if (r.kind == record_kind::completion) {
    if (completed_.size() < r.op) completed_.resize(r.op, 0);
    completed_[r.op - 1] = position + 1;
  } else if (r.kind == record_kind::decision) {
    decision_ = position;
  }
}

const journal_record* engine::journaled(std::uint32_t op) const noexcept {
  if (op == 0 || op > by_op_.size() || by_op_[op - 1] == 0) return nullptr;
  return &journal_[by_op_[op - 1] - 1];
}

const journal_record* engine::outcome_of(std::uint32_t op) const noexcept {
  const auto* command = journaled(op);
  if (!command || !command->pending) return command;
  if (op > completed_.size() || completed_[op - 1] == 0) return nullptr;
  return &journal_[completed_[op - 1] - 1];
}

engine::op_entry* engine::find_op(std::uint32_t op) noexcept {
  return op == 0 || op > ops_.size() ? nullptr : &ops_[op - 1];
}

engine::start_result engine::start(record_kind kind, std::string_view name, handler_set handlers) {
  const auto id = static_cast<std::uint32_t>(ops_.size() + 1);
  const std::uint32_t branch = kind == record_kind::value ? 0 : branch_ids_ + 1;
  const auto* r = journaled(id);
  if (r && (r->kind != kind || r->name != name || r->branch != branch)) {
    auto expected = describe(kind, name, id), recorded = describe(r->kind, r->name, r->op);
    if (r->kind == kind && r->name == name) {  // the same operation, but other branches came before it
      expected += " as branch " + std::to_string(branch);
      recorded += " as branch " + std::to_string(r->branch);
    }
    throw nondeterminism_error(gid_, std::move(expected), std::move(recorded));
  }
  branch_ids_ = std::max(branch_ids_, branch);
  op_entry e{id, kind, std::string(name), branch, handlers, op_state::running, 0};
  start_result out{start_kind::run, id, branch, nullptr};
  if (r) ++reached_journaled_;
  const auto* done = r ? outcome_of(id) : nullptr;
  e.carried = r != nullptr;  // a pending record without its completion: the run before left it in flight
  if (done) {
    e.state = done->failed ? op_state::failed : op_state::succeeded;
    e.seq = done->seq;
    out.what = start_kind::replay;
    out.record = done;
  } else if (decision_ || closing_) {
    // Decided (or being decided): nothing new runs. An operation the deciding
    // run had in flight is compensated as it was there; in closing mode every
    // operation without an outcome may have been called by an earlier run.
    const auto* d = decision();
    const bool was_in_flight =
        closing_ || (d && std::find(d->in_flight.begin(), d->in_flight.end(), id) != d->in_flight.end());
    e.state = was_in_flight ? op_state::unknown : op_state::running;
    if (!was_in_flight) e.handlers = {};
    out.what = start_kind::halt;
  } else {
    ++running_;
    if (!e.carried && kind != record_kind::value) uncarried_.push_back(id);
  }
  ops_.push_back(std::move(e));
  return out;
}

journal_record engine::outcome(std::uint32_t op, bool failed, std::string payload) {
  auto* e = find_op(op);
  if (!e || e->state != op_state::running || e->queued)
    throw std::logic_error("wf: outcome of an operation that is not running");
  e->queued = true;
  if (!e->carried) std::erase(uncarried_, op);
  journal_record r;
  r.kind = e->carried ? record_kind::completion : e->kind;
  r.op = op;
  r.name = e->name;
  r.branch = e->branch;
  r.failed = failed;
  r.payload = std::move(payload);
  return r;
}

void engine::unknown(std::uint32_t op) {
  auto* e = find_op(op);
  if (!e) return;
  if (e->state != op_state::running) return;
  --running_;
  e->state = op_state::unknown;
  e->queued = false;  // (its record was in a write that failed: this run writes nothing more)
}

std::vector<journal_record> engine::commands() {
  std::vector<journal_record> out;
  if (uncarried_.empty()) return out;
  std::sort(uncarried_.begin(), uncarried_.end());
  out.reserve(uncarried_.size());
  for (const auto id : uncarried_) {
    auto& e = ops_[id - 1];
    e.carried = true;
    journal_record r;
    r.kind = e.kind;
    r.op = id;
    r.name = e.name;
    r.branch = e.branch;
    r.pending = true;
    out.push_back(std::move(r));
  }
  uncarried_.clear();
  return out;
}

void engine::appended(journal_record record) {
  if (record.seq != next_seq()) throw std::logic_error("wf: record appended out of order");
  ++size_;
  if (is_operation_record(record.kind) && record.pending) return;  // its entry is marked as carried
  if (is_operation_record(record.kind) || record.kind == record_kind::completion) {
    // Its operation's entry says all that is needed of it from now on: the
    // record itself is not kept (a long workflow's journal is not copied
    // into memory as it grows).
    if (auto* e = find_op(record.op)) {
      e->queued = false;
      if (e->state == op_state::running) --running_;
      e->state = record.failed ? op_state::failed : op_state::succeeded;
      e->seq = record.seq;
    }
    return;
  }
  journal_.push_back(std::move(record));  // the decision and handler records
  index(journal_.back(), journal_.size() - 1);
}

const journal_record* engine::decision() const noexcept {
  return decision_ ? &journal_[*decision_] : nullptr;
}

const journal_record* engine::unreached() const noexcept {
  for (std::size_t op = ops_.size() + 1; op <= by_op_.size(); ++op)
    if (const auto* r = journaled(static_cast<std::uint32_t>(op))) return r;
  return nullptr;
}

journal_record engine::decide(bool commit, std::string payload) const {
  journal_record d;
  d.kind = record_kind::decision;
  d.name = commit ? "commit" : "rollback";
  d.failed = !commit;
  d.payload = std::move(payload);
  for (const auto& e : ops_)
    if (e.state == op_state::unknown && e.kind != record_kind::value) d.in_flight.push_back(e.id);
  return d;
}

bool engine::handler_done(record_kind kind, std::uint32_t op) const noexcept {
  if (!decision_) return false;
  for (std::size_t i = *decision_ + 1; i < journal_.size(); ++i)
    if (journal_[i].kind == kind && journal_[i].op == op) return true;
  return false;
}

std::vector<engine::planned_handler> engine::plan(const journal_record& decision) const {
  // Latest outcome first; those in flight (no outcome) before all, latest started first.
  std::vector<const op_entry*> order;
  for (const auto& e : ops_)
    if (e.handlers.any() && e.state != op_state::running) order.push_back(&e);
  std::sort(order.begin(), order.end(), [](const op_entry* a, const op_entry* b) {
    const bool a_unknown = a->state == op_state::unknown, b_unknown = b->state == op_state::unknown;
    if (a_unknown != b_unknown) return a_unknown;
    if (a_unknown) return a->id > b->id;
    return a->seq > b->seq;
  });

  const bool commit = !decision.failed;
  std::vector<planned_handler> out;
  auto add = [&](record_kind kind, const op_entry& e) {
    if (!handler_done(kind, e.id)) out.push_back({kind, e.id, e.branch, e.name});
  };
  for (const auto* e : order) {
    if (commit) {
      if (e->handlers.on_commit && e->state != op_state::unknown) add(record_kind::commit, *e);
      continue;
    }
    const bool compensate_failed = e->handlers.compensate_on_failure.value_or(compensate_failed_default_);
    if (e->handlers.on_rollback && (e->state != op_state::failed || compensate_failed)) add(record_kind::rollback, *e);
  }
  for (const auto* e : order)
    if (e->handlers.on_finish) add(record_kind::finish, *e);
  return out;
}

journal_record engine::handler_record(const planned_handler& h) {
  journal_record r;
  r.kind = h.kind;
  r.op = h.op;
  r.name = h.name;
  r.branch = h.branch;
  return r;
}

}  // namespace wf::detail
