#include "control/convert.hpp"

#include "store/store_checks.hpp"
#include "text.hpp"

#include <chrono>
#include <stdexcept>

namespace wf::control {

std::int64_t to_ms(wall_clock::time_point t) noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

wall_clock::time_point from_ms(std::int64_t ms) noexcept {
  return wall_clock::time_point(std::chrono::duration_cast<wall_clock::duration>(std::chrono::milliseconds(ms)));
}

v1::Status to_proto(workflow_status s) noexcept {
  switch (s) {
    case workflow_status::running:
      return v1::RUNNING;
    case workflow_status::succeeded:
      return v1::SUCCEEDED;
    case workflow_status::failed:
      return v1::FAILED;
    case workflow_status::stuck:
      return v1::STUCK;
  }
  return v1::STATUS_UNSPECIFIED;
}

std::optional<workflow_status> from_proto(v1::Status s) noexcept {
  switch (s) {
    case v1::RUNNING:
      return workflow_status::running;
    case v1::SUCCEEDED:
      return workflow_status::succeeded;
    case v1::FAILED:
      return workflow_status::failed;
    case v1::STUCK:
      return workflow_status::stuck;
    default:
      return std::nullopt;
  }
}

std::string status_name(v1::Status s) {
  const auto st = from_proto(s);
  return st ? std::string(to_string(*st)) : std::string();
}

void to_proto(const workflow_state& s, v1::Workflow& out) {
  out.set_gid(s.gid);
  out.set_name(s.name);
  out.set_status(to_proto(s.status));
  out.set_input(s.input);
  out.set_input_text(detail::storable_text(s.input));
  out.set_result(s.result);
  out.set_result_text(detail::storable_text(s.result));
  out.set_epoch(s.epoch);
  out.set_owner(s.owner);
  out.set_attempts(s.attempts);
  out.set_last_error(detail::storable_text(s.last_error));
  out.set_next_attempt_at_ms(to_ms(s.next_attempt_at));
  out.set_deadline_ms(s.deadline ? to_ms(*s.deadline) : 0);
  out.set_created_at_ms(to_ms(s.created_at));
  out.set_updated_at_ms(to_ms(s.updated_at));
}

std::string outcome_of(const journal_record& r) {
  switch (r.kind) {
    case record_kind::decision:
      return r.failed ? "rollback" : "commit";
    case record_kind::commit:
    case record_kind::rollback:
    case record_kind::finish:
      return "done";
    default:
      return r.pending ? "started" : r.failed ? "failed" : "ok";
  }
}

std::string branch_text(std::uint32_t branch) {
  if (branch == 0) return {};
  auto t = std::to_string(branch);
  return t.size() < 2 ? "0" + t : t;
}

void to_proto(const journal_record& r, v1::JournalRecord& out) {
  out.set_seq(r.seq);
  out.set_kind(std::string(to_string(r.kind)));
  out.set_name(r.name);
  out.set_op(r.op);
  out.set_branch(branch_text(r.branch));
  out.set_outcome(outcome_of(r));
  out.set_failed(r.failed);
  out.set_pending(r.pending);
  out.set_payload(r.payload);
  out.set_payload_text(detail::storable_text(r.payload));
  for (auto op : r.in_flight) out.add_in_flight(op);
}

workflow_query from_proto(const v1::ListWorkflowsRequest& r) {
  workflow_query q;
  if (!r.name().empty()) q.name = r.name();
  if (!r.owner().empty()) q.owner = r.owner();
  q.status = from_proto(r.status());
  if (!q.status && r.status() != v1::STATUS_UNSPECIFIED)
    throw std::invalid_argument("an unknown status (" + std::to_string(static_cast<int>(r.status())) + ")");
  if (r.created_from_ms() < 0 || r.created_until_ms() < 0) throw std::invalid_argument("a time before 1970");
  if (r.created_from_ms() != 0) q.created_from = from_ms(r.created_from_ms());
  if (r.created_until_ms() != 0) q.created_until = from_ms(r.created_until_ms());
  q.after = r.after();
  q.limit = r.limit() == 0 ? 50 : r.limit();
  q.count = r.count();
  detail::check_query(q, "list");  // what every store checks, checked at the door
  return q;
}

}  // namespace wf::control
