#include "replay.hpp"

#include <wf/errors.hpp>

namespace wf::detail {

namespace {
bool is_forward(record_kind k) {
  return k == record_kind::branch || k == record_kind::step || k == record_kind::value;
}
bool is_handler(record_kind k) {
  return k == record_kind::commit || k == record_kind::rollback || k == record_kind::finish;
}
}  // namespace

std::string describe(record_kind kind, std::string_view name, std::uint32_t seq) {
  std::string s(to_string(kind));
  s += " '";
  s += name;
  s += "' at #";
  s += std::to_string(seq);
  return s;
}

replay_cursor::replay_cursor(std::string gid, std::vector<journal_record> journal)
    : gid_(std::move(gid)), journal_(std::move(journal)) {
  // Validate the shape once, so that the rest can trust it.
  for (std::size_t i = 0; i < journal_.size(); ++i) {
    const auto& r = journal_[i];
    const auto where = "journal of '" + gid_ + "', record #" + std::to_string(i + 1) + ": ";
    if (r.seq != i + 1) throw corrupt_journal_error(where + "sequence number " + std::to_string(r.seq));
    if (is_forward(r.kind)) {
      if (decision_) throw corrupt_journal_error(where + "a forward record after the decision");
      ++forward_count_;
    } else if (r.kind == record_kind::decision) {
      if (decision_) throw corrupt_journal_error(where + "a second decision");
      decision_ = i;
    } else if (is_handler(r.kind)) {
      if (!decision_) throw corrupt_journal_error(where + "a handler record before the decision");
    } else {
      throw corrupt_journal_error(where + "unknown record kind " + std::to_string(static_cast<int>(r.kind)) +
                                  " (written by a newer version?)");
    }
  }
}

replay_cursor::next_step replay_cursor::next(record_kind kind, std::string_view name) {
  const auto seq = static_cast<std::uint32_t>(position_ + 1);
  if (position_ < forward_count_) {
    const auto& r = journal_[position_];
    if (r.kind != kind || r.name != name)
      throw nondeterminism_error(gid_, describe(kind, name, seq), describe(r.kind, r.name, r.seq));
    ++position_;
    return {next_kind::replayed, &r, seq};
  }
  if (decision_) return {next_kind::halt, nullptr, seq};
  return {next_kind::fresh, nullptr, next_seq()};
}

const journal_record* replay_cursor::decision() const noexcept {
  return decision_ ? &journal_[*decision_] : nullptr;
}

bool replay_cursor::handler_done(record_kind kind, std::uint32_t branch) const noexcept {
  if (!decision_) return false;
  for (std::size_t i = *decision_ + 1; i < journal_.size(); ++i)
    if (journal_[i].kind == kind && journal_[i].branch == branch) return true;
  return false;
}

const journal_record* replay_cursor::unreached() const noexcept {
  return position_ < forward_count_ ? &journal_[position_] : nullptr;
}

void replay_cursor::appended(journal_record r) {
  if (is_forward(r.kind)) {
    ++forward_count_;
    ++position_;
  } else if (r.kind == record_kind::decision) {
    decision_ = journal_.size();
  }
  journal_.push_back(std::move(r));
}

}  // namespace wf::detail
