// Between the store's types and the control API's messages
// (proto/wf/control.proto): used by the control server and by wfctl, so that
// a workflow reads the same whichever way it was fetched.
#ifndef WF_SRC_CONTROL_CONVERT_HPP
#define WF_SRC_CONTROL_CONVERT_HPP

#include "control.pb.h"

#include <wf/journal.hpp>
#include <wf/store.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace wf::control {

/// Milliseconds since 1970 (UTC); 0 for the epoch itself, which wf uses as "none".
std::int64_t to_ms(wall_clock::time_point t) noexcept;
wall_clock::time_point from_ms(std::int64_t ms) noexcept;

v1::Status to_proto(workflow_status s) noexcept;
/// nullopt for STATUS_UNSPECIFIED (and values this version does not know).
std::optional<workflow_status> from_proto(v1::Status s) noexcept;
/// "running", "succeeded"... as the store names them; empty for none.
std::string status_name(v1::Status s);

void to_proto(const workflow_state& s, v1::Workflow& out);
void to_proto(const journal_record& r, v1::JournalRecord& out);

/// The store's query for a request. Throws std::invalid_argument for what
/// the store would refuse (a page above workflow_query::max_limit, a time
/// range that ends before it starts, a negative time).
workflow_query from_proto(const v1::ListWorkflowsRequest& r);

/// What a record says happened: ok, failed, started, commit, rollback, done.
std::string outcome_of(const journal_record& r);
/// "01" for branch 1; empty for none.
std::string branch_text(std::uint32_t branch);

}  // namespace wf::control

#endif
