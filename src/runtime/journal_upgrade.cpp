// Reading journals written before operation ids (the first journal format,
// schema version 1). Such a journal is still valid: it is read into the
// operation-keyed form here, and the records appended to it afterwards carry
// operation ids. See docs/journal-format.md, "Journals of the first format".
#include "engine.hpp"

#include <map>

namespace wf::detail {

std::vector<journal_record> upgrade_journal(std::string_view gid, std::vector<journal_record> records) {
  std::uint32_t operations = 0;                    // operation records so far
  std::map<std::uint32_t, std::uint32_t> by_branch;  // first format: branch id -> operation id
  for (auto& r : records) {
    if (is_operation_record(r.kind)) {
      ++operations;
      if (r.op == 0) r.op = operations;  // one at a time: the n-th record is operation n
      if (r.branch != 0) by_branch.emplace(r.branch, r.op);
    } else if (r.kind == record_kind::decision && r.branch != 0) {
      // The first format's rollback decision named the branch in flight by
      // its branch id; it was the operation after the last one journaled.
      if (!r.in_flight.empty())
        throw corrupt_journal_error("journal of '" + std::string(gid) + "', record #" + std::to_string(r.seq) +
                                    ": a decision in both formats");
      by_branch.emplace(r.branch, operations + 1);
      r.in_flight.push_back(operations + 1);
      r.branch = 0;
    } else if (is_handler_record(r.kind) && r.op == 0) {
      auto it = by_branch.find(r.branch);
      if (it == by_branch.end())
        throw corrupt_journal_error("journal of '" + std::string(gid) + "', record #" + std::to_string(r.seq) +
                                    ": a handler record for branch " + std::to_string(r.branch) +
                                    ", which the journal does not hold");
      r.op = it->second;
    }
  }
  return records;
}

}  // namespace wf::detail
