// Fuzz target: a journal as a store could hand it back (corrupted on disk,
// written by a newer version or by the first journal format, edited by
// hand), through the replay engine - the code starting its operations, some
// finishing, some unknown, a decision, its handlers - and the codecs that
// decode its payloads. Whatever the bytes, the only acceptable ends are a
// result or one of wf's documented errors (corrupt_journal_error: the
// workflow is quarantined as stuck; nondeterminism_error; decode_error); a
// crash, a sanitizer report, any other exception, or an engine answer that
// breaks its own rules (a replayed record of another name, a handler planned
// twice) is a finding.
//
// Input: records, each a 6-byte header and its bytes:
//   kind, branch, flags (bit 0: failed; bit 1: a wrong seq; bit 2: the code
//   asks for another name; bit 3: the code asks for another kind; bit 4: the
//   code's outcome for it is unknown; bit 5 of the first record: closing
//   mode; bit 6: a decision names operation `op` in flight),
//   op (0: the first format's records), name length (mod 32), payload
//   length (mod 128); then the name, the payload.
#include "runtime/engine.hpp"

#include <wf/codec.hpp>
#include <wf/errors.hpp>
#include <wf/json.hpp>

#include <boost/json/src.hpp>  // Boost.JSON compiled here, instrumented

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace {

struct planned_call {
  wf::record_kind kind;
  std::string name;
  bool unknown;
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
  std::vector<planned_call> calls;  // what the workflow code starts, in order
  bool closing = false;
  std::size_t i = 0;
  while (i + 6 <= size) {
    wf::journal_record r;
    r.kind = static_cast<wf::record_kind>(data[i]);
    r.branch = data[i + 1];
    const std::uint8_t flags = data[i + 2];
    r.op = data[i + 3];
    const std::size_t name_len = data[i + 4] % 32, payload_len = data[i + 5] % 128;
    i += 6;
    const std::size_t n = std::min(name_len, size - i);
    r.name.assign(reinterpret_cast<const char*>(data + i), n);
    i += n;
    const std::size_t p = std::min(payload_len, size - i);
    r.payload.assign(reinterpret_cast<const char*>(data + i), p);
    i += p;
    r.failed = flags & 1;
    r.seq = static_cast<std::uint32_t>(journal.size() + 1 + ((flags & 2) ? r.branch : 0));
    if (journal.empty()) closing = flags & 32;
    if ((flags & 64) && r.kind == wf::record_kind::decision) r.in_flight.push_back(r.op);
    r.pending = flags & 128;
    planned_call c{r.kind, r.name, (flags & 16) != 0};
    if (flags & 4) c.name += "'";
    if (flags & 8) c.kind = static_cast<wf::record_kind>((static_cast<int>(r.kind) % 3) + 1);
    calls.push_back(std::move(c));
    journal.push_back(std::move(r));
  }
  for (const auto& r : journal) decode_payload(r.payload);

  try {
    wf::detail::engine e("fuzz", journal, false, closing);
    (void)e.decision();
    (void)e.unreached();
    std::vector<std::uint32_t> running;
    for (const auto& c : calls) {
      const auto kind = c.kind == wf::record_kind::branch || c.kind == wf::record_kind::step ||
                                c.kind == wf::record_kind::value
                            ? c.kind
                            : wf::record_kind::branch;
      const wf::detail::handler_set handlers{true, true, true, {}};
      const auto started = e.start(kind, c.name, kind == wf::record_kind::value ? wf::detail::handler_set{} : handlers);
      // A replayed outcome is the operation's record, or the completion of its pending command.
      if (started.what == wf::detail::engine::start_kind::replay &&
          (started.record->name != c.name || started.record->op != started.op ||
           (started.record->kind != kind && started.record->kind != wf::record_kind::completion) ||
           (started.record->kind == kind && started.record->pending)))
        __builtin_trap();
      if (started.what != wf::detail::engine::start_kind::run) continue;
      if (c.unknown) {
        e.unknown(started.op);
        continue;
      }
      running.push_back(started.op);
    }
    // A write carries the commands of those in flight (never a value's, never twice)...
    std::set<std::uint32_t> commanded;
    for (auto& c : e.commands()) {
      if (!c.pending || c.kind == wf::record_kind::value || !commanded.insert(c.op).second) __builtin_trap();
      c.seq = e.next_seq();
      e.appended({c});
    }
    if (!e.commands().empty()) __builtin_trap();
    // ...then the outcomes arrive in reverse: the latest started finishes first.
    for (auto it = running.rbegin(); it != running.rend(); ++it) {
      auto r = e.outcome(*it, false, "null");
      if (commanded.count(*it) && r.kind != wf::record_kind::completion) __builtin_trap();
      r.seq = e.next_seq();
      e.appended({r});
    }
    if (e.running() != 0) __builtin_trap();
    (void)e.unreached();
    const wf::journal_record* d = e.decision();
    wf::journal_record made;
    if (!d) {
      made = e.decide(false, "fuzz");
      made.seq = e.next_seq();
      e.appended({made});
      d = e.decision();
    }
    decode_payload(d->payload);
    std::set<std::tuple<int, std::uint32_t>> planned;
    for (const auto& h : e.plan(*d)) {
      if (!planned.emplace(static_cast<int>(h.kind), h.op).second) __builtin_trap();
      auto r = wf::detail::engine::handler_record(h);
      r.seq = e.next_seq();
      e.appended({r});
    }
    if (!e.plan(*e.decision()).empty()) __builtin_trap();  // every handler journaled: nothing left to run
  } catch (const wf::detail::corrupt_journal_error&) {
  } catch (const wf::nondeterminism_error&) {
  }
  return 0;
}
