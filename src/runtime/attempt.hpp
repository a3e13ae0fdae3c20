// One run of a workflow's code over its journal: replays what is recorded,
// runs the rest for real, journals each outcome before going on, and then
// runs the commit or rollback phase.
#ifndef WF_SRC_RUNTIME_ATTEMPT_HPP
#define WF_SRC_RUNTIME_ATTEMPT_HPP

#include "replay.hpp"

#include <wf/runtime.hpp>
#include <wf/store.hpp>
#include <wf/workflow.hpp>

#include <exception>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace wf::detail {

struct registration {
  raw_workflow fn;
  workflow_options options;
};

/// What is stored of a workflow's progress: `status` and `result`, with the
/// attempts, last error and next attempt time `s` has.
inline progress progress_of(const workflow_state& s, workflow_status status, std::string result) {
  return progress{status, std::move(result), s.attempts, s.last_error, s.next_attempt_at};
}

struct attempt_result {
  enum class kind {
    finished,    ///< succeeded or rolled back: `out`
    transient,   ///< try again later: `error`, `ongoing`
    stuck,       ///< a bug: `error` is the reason, `exception` what to tell callers
    lease_lost,  ///< another runner owns the workflow now: `exception`
  };
  kind what = kind::transient;
  outcome out;
  std::string error;
  bool ongoing = false;
  std::exception_ptr exception;
};

/// A random version-4 UUID in its text form.
std::string random_uuid(std::mt19937_64& rng);

/// Commits one write and returns its status.
boost::asio::awaitable<write_status> commit_one(store& s, write w);

class attempt {
 public:
  /// Throws `corrupt_journal_error` for a malformed journal.
  attempt(store& s, const registration& reg, const workflow_state& state, std::vector<journal_record> journal,
          std::mt19937_64& rng);

  boost::asio::awaitable<attempt_result> run();
  enum class ending { returned, business, transient, halted };
  boost::asio::awaitable<attempt_result> conclude(ending how, std::string value, bool ongoing_answer);

  // For wf::workflow and wf::workflow::branch.
  struct branch_handlers {
    handler on_rollback, on_commit, on_finish;
    std::optional<bool> compensate_on_failure;
  };
  const std::string& gid() const noexcept { return state_.gid; }
  const std::string& name() const noexcept { return state_.name; }
  bool replaying() const noexcept { return cursor_.replaying(); }
  std::mt19937_64& rng() noexcept { return rng_; }
  boost::asio::awaitable<std::string> run_branch(record_kind kind, std::string name, raw_action action,
                                                 branch_handlers handlers);
  boost::asio::awaitable<std::string> record_value(std::string name, std::function<std::string()> fn);

 private:
  enum class branch_state { succeeded, failed, unknown };
  struct reached_branch {
    std::uint32_t id;
    std::string id_text;
    std::string name;
    branch_handlers handlers;
    branch_state state;
  };
  struct planned_handler {
    record_kind kind;
    const reached_branch* branch;
  };

  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  std::size_t reach(const replay_cursor::next_step& step, std::uint32_t id, const std::string& name,
                    branch_handlers handlers);
  void settle(std::size_t index, bool failed);
  boost::asio::awaitable<void> record_outcome(std::uint32_t seq, record_kind kind, const std::string& name,
                                              std::uint32_t id, bool business, const std::string& result);

  // Throws what stops this run, if anything does (see the members below).
  void check_can_go_on() const;
  [[noreturn]] void stop_with(std::exception_ptr error, std::string reason);
  void check_sizes(const std::vector<journal_record>& records, const std::optional<progress>& p);
  // Consults the cursor; records a non-determinism error so that it stops the
  // run even if the workflow code catches it.
  replay_cursor::next_step next(record_kind kind, const std::string& name);
  // Appends records (and progress) durably; throws lease_lost_error if refused.
  boost::asio::awaitable<void> append(std::vector<journal_record> records, std::optional<progress> p);
  boost::asio::awaitable<void> append_one(journal_record r, std::optional<progress> p);
  std::vector<planned_handler> plan(bool commit) const;
  boost::asio::awaitable<attempt_result> finish(bool commit, std::string payload, bool record_decision,
                                                std::uint32_t in_flight);
  attempt_result stop_result() const;
  bool forward_budget_spent() const;

  store& store_;
  const registration& reg_;
  const workflow_state& state_;  // the driver's, which outlives this attempt
  replay_cursor cursor_;
  std::mt19937_64& rng_;
  std::vector<reached_branch> branches_;

  // What stops the run. `stop_` (non-determinism, lost lease) ends it as a
  // bug or a lost claim; `transient_` is a transient error from a branch: an
  // action whose outcome is unknown is not journaled, so the code must not
  // go past it; `halted_` means the journaled decision was reached.
  std::exception_ptr stop_;
  std::string stop_reason_;
  bool stop_is_lease_ = false;
  std::exception_ptr transient_;
  bool halted_ = false;
  std::uint32_t in_flight_ = 0;  // branch id whose action threw a transient error
};

}  // namespace wf::detail

#endif  // WF_SRC_RUNTIME_ATTEMPT_HPP
