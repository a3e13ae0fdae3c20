// Fuzz target: a journal as a store could hand it back (corrupted on disk,
// written by a newer version, edited by hand), through the replay engine and
// the codecs that decode its payloads. Whatever the bytes, the only
// acceptable ends are a result or one of wf's documented errors
// (corrupt_journal_error: the workflow is quarantined as stuck;
// nondeterminism_error; decode_error); a crash, a sanitizer report or any
// other exception is a finding.
//
// Input: records, each a 5-byte header and its bytes:
//   kind, branch, flags (bit 0: failed; bit 1: a wrong seq; bit 2: the code
//   asks for another name; bit 3: the code asks for another kind),
//   name length (mod 32), payload length (mod 128); then the name, the payload.
#include "runtime/replay.hpp"

#include <wf/codec.hpp>
#include <wf/errors.hpp>
#include <wf/json.hpp>

#include <boost/json/src.hpp>  // Boost.JSON compiled here, instrumented

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace {

struct planned_call {
  wf::record_kind kind;
  std::string name;
};

void decode_payload(const std::string& payload) {
  try {
    (void)wf::decode<boost::json::value>(payload);
  } catch (const wf::decode_error&) {
  }
  try {
    (void)wf::decode<std::int64_t>(payload);
  } catch (const wf::decode_error&) {
  }
  try {
    (void)wf::decode<double>(payload);
  } catch (const wf::decode_error&) {
  }
  try {
    (void)wf::decode<bool>(payload);
  } catch (const wf::decode_error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<wf::journal_record> journal;
  std::vector<planned_call> calls;  // what the workflow code asks for, in order
  std::size_t i = 0;
  while (i + 5 <= size) {
    wf::journal_record r;
    r.kind = static_cast<wf::record_kind>(data[i]);
    r.branch = data[i + 1];
    const std::uint8_t flags = data[i + 2];
    const std::size_t name_len = data[i + 3] % 32, payload_len = data[i + 4] % 128;
    i += 5;
    const std::size_t n = std::min(name_len, size - i);
    r.name.assign(reinterpret_cast<const char*>(data + i), n);
    i += n;
    const std::size_t p = std::min(payload_len, size - i);
    r.payload.assign(reinterpret_cast<const char*>(data + i), p);
    i += p;
    r.failed = flags & 1;
    r.seq = static_cast<std::uint32_t>(journal.size() + 1 + ((flags & 2) ? r.branch : 0));
    planned_call c{r.kind, r.name};
    if (flags & 4) c.name += "'";
    if (flags & 8) c.kind = static_cast<wf::record_kind>((static_cast<int>(r.kind) % 3) + 1);
    calls.push_back(std::move(c));
    journal.push_back(std::move(r));
  }
  for (const auto& r : journal) decode_payload(r.payload);

  try {
    wf::detail::replay_cursor cursor("fuzz", journal);
    (void)cursor.decision();
    (void)cursor.unreached();
    for (const auto& c : calls) {
      const auto kind = c.kind == wf::record_kind::branch || c.kind == wf::record_kind::step ||
                                c.kind == wf::record_kind::value
                            ? c.kind
                            : wf::record_kind::branch;
      const auto step = cursor.next(kind, c.name);
      if (step.kind == wf::detail::replay_cursor::next_kind::replayed && step.record->name != c.name) __builtin_trap();
      if (step.kind == wf::detail::replay_cursor::next_kind::halt) break;
      if (step.kind == wf::detail::replay_cursor::next_kind::fresh) {
        wf::journal_record made{step.seq, kind, c.name, cursor.take_branch_id(), false, "null"};
        cursor.appended(std::move(made));
      }
    }
    for (std::uint32_t b = 0; b < 8; ++b) {
      (void)cursor.handler_done(wf::record_kind::rollback, b);
      (void)cursor.handler_done(wf::record_kind::commit, b);
    }
    (void)cursor.unreached();
    if (const auto* d = cursor.decision()) decode_payload(d->payload);
  } catch (const wf::detail::corrupt_journal_error&) {
  } catch (const wf::nondeterminism_error&) {
  }
  return 0;
}
