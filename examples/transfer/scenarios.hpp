// The three runs of the example, each in a world of its own (two fresh banks
// and a fresh store), each checking how it ended.
#ifndef WF_EXAMPLES_TRANSFER_SCENARIOS_HPP
#define WF_EXAMPLES_TRANSFER_SCENARIOS_HPP

#include <string>
#include <vector>

namespace transfer {

struct scenario_result {
  std::string name;
  bool passed = false;
  std::string summary;                ///< one line: how it ended
  std::vector<std::string> failures;  ///< the expectations that did not hold
};

/// alice pays bob 30: both branches apply, the workflow commits.
scenario_result run_success_scenario();
/// The same transfer told to fail at TransIn: TransOutRevert gives the money back.
scenario_result run_rollback_scenario();
/// The process dies right after TransOut is journaled; a restarted runtime
/// recovers the workflow and finishes it without taking the money twice.
scenario_result run_crash_scenario();

}  // namespace transfer

#endif  // WF_EXAMPLES_TRANSFER_SCENARIOS_HPP
