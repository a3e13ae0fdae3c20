// The `transfer` workflow: DTM's inter-bank transfer as a wf workflow.
//
// Input: a JSON object {"from":"alice","to":"bob","amount":30,"fail_at_trans_in":false}.
// Result: a sentence saying what was transferred. Branches, in order:
//   01 TransOut on the paying bank, compensated by TransOutRevert;
//   02 TransIn  on the receiving bank, compensated by TransInRevert.
// If TransIn is refused (wf::failure), the workflow rolls back: TransOutRevert
// gives the money back. TransIn itself is not compensated, since a branch
// whose own action failed changed nothing (wf's default, as in DTM).
#ifndef WF_EXAMPLES_TRANSFER_TRANSFER_WORKFLOW_HPP
#define WF_EXAMPLES_TRANSFER_TRANSFER_WORKFLOW_HPP

#include "bank.hpp"

#include <wf/json.hpp>
#include <wf/runtime.hpp>

#include <boost/json/value.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace transfer {

inline constexpr const char* workflow_name = "transfer";

/// The input of the workflow, decoded.
struct transfer_request {
  std::string from;
  std::string to;
  std::int64_t amount = 0;
  bool fail_at_trans_in = false;
};

/// The JSON input of a transfer.
boost::json::value to_json(const transfer_request& request);

/// Decodes the JSON input. Throws `wf::failure` if it is malformed: a bad
/// request fails the workflow for good instead of being retried forever.
transfer_request parse_transfer(const boost::json::value& input);

/// Optional hooks into the workflow, for demonstrations.
struct transfer_hooks {
  /// Called when TransOut's outcome is journaled (not when it is replayed):
  /// the orchestrator's --crash-after-trans-out kills the process here.
  std::function<void(const std::string& gid)> after_trans_out;
};

/// Registers the `transfer` workflow on `rt` (or the same workflow under
/// another `name`, e.g. one per direction between two banks). The banks are
/// shared with the workflow's branches and handlers, which the runtime keeps
/// until the workflow finishes.
void register_transfer(wf::runtime& rt, std::shared_ptr<bank> from_bank, std::shared_ptr<bank> to_bank,
                       transfer_hooks hooks = {}, wf::workflow_options options = {},
                       const std::string& name = workflow_name);

}  // namespace transfer

#endif  // WF_EXAMPLES_TRANSFER_TRANSFER_WORKFLOW_HPP
