// The replay engine: what one run of a workflow's code may do, given its
// journal and what happens during the run. Pure logic, no I/O and no
// coroutines: the attempt (attempt.cpp) runs the code, calls the actions
// and the store, and tells the engine what happened; the engine answers
// what to do next (replay an outcome, run an action, halt, journal this
// record, decide, run that handler). Tested on its own with canned journals
// (tests/runtime/engine_test.cpp) and fuzzed (fuzz/journal_fuzz.cpp).
#ifndef WF_SRC_RUNTIME_ENGINE_HPP
#define WF_SRC_RUNTIME_ENGINE_HPP

#include <wf/journal.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace wf::detail {

/// The journal does not have the shape wf writes (gaps, records out of
/// place, unknown kinds, an operation journaled twice). The workflow is
/// marked stuck.
class corrupt_journal_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Records of an operation (branch, step, value: what was started, with its
/// outcome unless the record is pending), and of a handler that has run.
inline bool is_operation_record(record_kind k) noexcept {
  return k == record_kind::branch || k == record_kind::step || k == record_kind::value;
}
inline bool is_handler_record(record_kind k) noexcept {
  return k == record_kind::commit || k == record_kind::rollback || k == record_kind::finish;
}

/// "branch 'TransOut' (operation 2)"
std::string describe(record_kind kind, std::string_view name, std::uint32_t op);

/// Brings the records of the first journal format (no operation ids: op 0)
/// to the operation-keyed form; records that have ids pass unchanged. In
/// that format operations ran one at a time, so the n-th operation record
/// is operation n; a rollback decision named the branch in flight by branch
/// id (`branch`), and handler records named branches by branch id. Throws
/// corrupt_journal_error for what neither format can hold.
std::vector<journal_record> upgrade_journal(std::string_view gid, std::vector<journal_record> records);

/// Which handlers an operation registered (the attempt keeps the functions).
struct handler_set {
  bool on_rollback = false;
  bool on_commit = false;
  bool on_finish = false;
  std::optional<bool> compensate_on_failure;
  bool any() const noexcept { return on_rollback || on_commit || on_finish; }
};

class engine {
 public:
  /// `journal` as read from the store (either format). In `closing` mode the
  /// run only rebuilds the handlers to roll back: operations without an
  /// outcome are not run but taken as in flight (see `start`). Throws
  /// corrupt_journal_error.
  engine(std::string gid, std::vector<journal_record> journal, bool compensate_failed_default, bool closing = false);

  // ---- the forward phase: operations started by the workflow's code

  enum class start_kind {
    replay,  ///< the journal holds its outcome: `record`
    run,     ///< run it for real, then report its outcome
    halt,    ///< do not run it: the forward phase is decided (or closing)
  };
  struct start_result {
    start_kind what = start_kind::run;
    std::uint32_t op = 0;
    std::uint32_t branch = 0;  ///< 0 for values
    const journal_record* record = nullptr;
  };
  /// The code starts an operation. Throws nondeterminism_error if the
  /// journal holds another kind or name for this operation id.
  start_result start(record_kind kind, std::string_view name, handler_set handlers);
  /// A started operation's outcome is known: the record to journal (its seq
  /// is given when it is appended): the operation record, or, if a write
  /// already carries its command (`commands()`), a completion record.
  journal_record outcome(std::uint32_t op, bool failed, std::string payload);
  /// The commands (pending operation records, by operation id) of the
  /// branches and steps started whose outcome is neither journaled nor
  /// queued (outcome()) and that no write has carried yet. Every write the
  /// attempt makes carries them first, so that the journal shows what is in
  /// flight; they are marked as carried (a write that fails ends the run's
  /// writing, so a command is never offered twice). Cheap when there are none.
  std::vector<journal_record> commands();
  /// A started operation's outcome is unknown (a transient error, or a write
  /// of its record that may or may not have landed).
  void unknown(std::uint32_t op);
  /// This record is durable now (records are given in journal order; the
  /// payload of an operation or completion record is not needed).
  /// Throws std::logic_error if its seq does not continue the journal.
  void appended(journal_record record);
  std::uint32_t next_seq() const noexcept { return size_ + 1; }

  /// True while journaled operations remain that the code has not reached.
  bool replaying() const noexcept { return reached_journaled_ < journaled_ops_; }
  /// Operations started and not finished (neither journaled nor unknown).
  std::size_t running() const noexcept { return running_; }

  // ---- the end of the forward phase

  /// The journaled decision, if the forward phase already ended.
  const journal_record* decision() const noexcept;
  /// A journaled operation the code has not reached (the lowest id), if any:
  /// code that ends while one remains is non-deterministic.
  const journal_record* unreached() const noexcept;
  /// A new decision, naming the operations whose outcome is unknown. The
  /// caller appends it.
  journal_record decide(bool commit, std::string payload) const;

  // ---- the commit or rollback phase

  struct planned_handler {
    record_kind kind = record_kind::commit;  ///< commit, rollback or finish
    std::uint32_t op = 0;
    std::uint32_t branch = 0;
    std::string name;
  };
  /// The handlers still to run for `decision` (journaled, or just made and
  /// appended), in order: on_commit (commit) or on_rollback (rollback) of the
  /// reached branches, latest outcome first, those in flight before all;
  /// then on_finish, in the same order. Handlers journaled as done are left out.
  std::vector<planned_handler> plan(const journal_record& decision) const;
  /// The record saying `h` has run.
  static journal_record handler_record(const planned_handler& h);

  const std::string& gid() const noexcept { return gid_; }

 private:
  enum class op_state { running, succeeded, failed, unknown };
  struct op_entry {
    std::uint32_t id = 0;
    record_kind kind = record_kind::branch;
    std::string name;
    std::uint32_t branch = 0;
    handler_set handlers;
    op_state state = op_state::running;
    std::uint32_t seq = 0;  // the seq of the record holding its outcome, once journaled
    bool carried = false;   // its command is journaled, or in a write under way
    bool queued = false;    // its outcome is queued for a write
  };

  op_entry* find_op(std::uint32_t op) noexcept;
  // The operation's command (its operation record), if journaled.
  const journal_record* journaled(std::uint32_t op) const noexcept;
  // The record holding its outcome (the operation record, or the completion of a pending one).
  const journal_record* outcome_of(std::uint32_t op) const noexcept;
  bool handler_done(record_kind kind, std::uint32_t op) const noexcept;
  void index(const journal_record& r, std::size_t position);

  std::string gid_;
  // The journal as read, then the decision and handler records appended
  // (the operation records appended live on in ops_).
  std::vector<journal_record> journal_;
  std::uint32_t size_ = 0;  // records in the journal, read or appended
  bool compensate_failed_default_;
  bool closing_;
  std::vector<std::size_t> by_op_;        // op id -> position in journal_ + 1 (0: none)
  std::vector<std::size_t> completed_;    // op id -> position of its completion record + 1 (0: none)
  std::optional<std::size_t> decision_;   // position of the decision
  std::size_t journaled_ops_ = 0;         // operation records in journal_ (those read)
  std::size_t reached_journaled_ = 0;     // of those, reached by the code
  std::vector<op_entry> ops_;             // operations started, by id - 1
  std::uint32_t branch_ids_ = 0;
  std::size_t running_ = 0;
  std::vector<std::uint32_t> uncarried_;  // ids of branches and steps whose command commands() is to offer
};

}  // namespace wf::detail

#endif  // WF_SRC_RUNTIME_ENGINE_HPP
