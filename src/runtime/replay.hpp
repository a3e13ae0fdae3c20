// The replay engine: matches what the workflow code asks for with its journal.
// Pure logic, no I/O: the attempt (attempt.cpp) does the store calls and tells
// the cursor what became durable.
#ifndef WF_SRC_RUNTIME_REPLAY_HPP
#define WF_SRC_RUNTIME_REPLAY_HPP

#include <wf/journal.hpp>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace wf::detail {

/// The journal does not have the shape wf writes (gaps, records out of
/// place, unknown kinds). The workflow is marked stuck.
class corrupt_journal_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// "branch 'TransOut' at #2"
std::string describe(record_kind kind, std::string_view name, std::uint32_t seq);

class replay_cursor {
 public:
  /// Throws `corrupt_journal_error` if the journal is malformed.
  replay_cursor(std::string gid, std::vector<journal_record> journal);

  enum class next_kind {
    replayed,  ///< the journal holds this step: `record` is its outcome
    fresh,     ///< run it for real and append it at `seq`
    halt,      ///< a decision is journaled: the forward phase is over, do not run it
  };
  struct next_step {
    next_kind kind;
    const journal_record* record = nullptr;
    std::uint32_t seq = 0;
  };

  /// The code reached a forward step of `kind` named `name`. Throws
  /// `nondeterminism_error` if the journal holds something else there.
  next_step next(record_kind kind, std::string_view name);

  /// Branch ids (01, 02...) are given to branches and steps in the order reached.
  std::uint32_t take_branch_id() noexcept { return ++branch_ids_; }

  /// The journaled decision, if the forward phase already ended.
  const journal_record* decision() const noexcept;
  /// Whether the handler `kind` of branch `branch` is journaled as done.
  bool handler_done(record_kind kind, std::uint32_t branch) const noexcept;
  /// The first journaled forward record the code has not reached, if any.
  const journal_record* unreached() const noexcept;

  bool replaying() const noexcept { return position_ < forward_count_; }
  std::uint32_t next_seq() const noexcept { return static_cast<std::uint32_t>(journal_.size() + 1); }

  /// A record made at `next_seq()` is durable.
  void appended(journal_record r);

 private:
  std::string gid_;
  std::vector<journal_record> journal_;
  std::size_t forward_count_ = 0;
  std::size_t position_ = 0;
  std::optional<std::size_t> decision_;
  std::uint32_t branch_ids_ = 0;
};

}  // namespace wf::detail

#endif  // WF_SRC_RUNTIME_REPLAY_HPP
