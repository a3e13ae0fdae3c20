// The replay engine on its own: pure logic over canned journals, no I/O.
#include "runtime/engine.hpp"

#include <wf/errors.hpp>
#include <wf/retry_policy.hpp>

#include <catch2/catch.hpp>

using wf::journal_record;
using wf::record_kind;
using wf::detail::engine;
using wf::detail::handler_set;
using start = engine::start_kind;

namespace {
// An operation record (or a handler record) of the operation-keyed format.
journal_record rec(std::uint32_t seq, record_kind k, std::uint32_t op, std::string name, std::uint32_t branch = 0,
                   bool failed = false, std::string payload = {}) {
  journal_record r;
  r.seq = seq;
  r.kind = k;
  r.op = op;
  r.name = std::move(name);
  r.branch = branch;
  r.failed = failed;
  r.payload = std::move(payload);
  return r;
}
journal_record decision(std::uint32_t seq, bool commit, std::string payload = {}, std::vector<std::uint32_t> in_flight = {}) {
  journal_record r;
  r.seq = seq;
  r.kind = record_kind::decision;
  r.name = commit ? "commit" : "rollback";
  r.failed = !commit;
  r.payload = std::move(payload);
  r.in_flight = std::move(in_flight);
  return r;
}
const handler_set none{};
const handler_set undo{true, false, false, {}};
const handler_set all{true, true, true, {}};

// Appends `r` as the next record.
void append(engine& e, journal_record r) {
  r.seq = e.next_seq();
  e.appended({r});
}

std::vector<std::string> names(const std::vector<engine::planned_handler>& plan) {
  std::vector<std::string> out;
  for (const auto& h : plan) out.push_back(std::string(wf::to_string(h.kind)) + " " + h.name);
  return out;
}
}  // namespace

TEST_CASE("engine: an empty journal runs every operation, with ids and branch ids in start order") {
  engine e("g", {}, false);
  auto a = e.start(record_kind::branch, "A", undo);
  auto v = e.start(record_kind::value, "now", none);
  auto b = e.start(record_kind::step, "B", none);
  CHECK(a.what == start::run);
  CHECK(a.op == 1);
  CHECK(a.branch == 1);
  CHECK(v.op == 2);
  CHECK(v.branch == 0);
  CHECK(b.op == 3);
  CHECK(b.branch == 2);
  CHECK(e.running() == 3);
  CHECK_FALSE(e.replaying());
}

TEST_CASE("engine: journaled operations replay by id, whatever order their outcomes came in") {
  // B (operation 2) finished before A (operation 1).
  engine e("g", {rec(1, record_kind::branch, 2, "B", 2, false, "rb"), rec(2, record_kind::branch, 1, "A", 1, true, "no")},
           false);
  CHECK(e.replaying());
  auto a = e.start(record_kind::branch, "A", undo);
  REQUIRE(a.what == start::replay);
  CHECK(a.record->failed);
  CHECK(a.record->payload == "no");
  auto b = e.start(record_kind::branch, "B", undo);
  REQUIRE(b.what == start::replay);
  CHECK(b.record->payload == "rb");
  CHECK_FALSE(e.replaying());
  CHECK(e.start(record_kind::branch, "C", undo).what == start::run);
}

TEST_CASE("engine: another name or kind for a journaled operation id is non-determinism naming both") {
  engine e("g", {rec(1, record_kind::branch, 1, "TransOut", 1)}, false);
  try {
    e.start(record_kind::branch, "TransIn", undo);
    FAIL("no error");
  } catch (const wf::nondeterminism_error& x) {
    CHECK(x.expected() == "branch 'TransIn' (operation 1)");
    CHECK(x.recorded() == "branch 'TransOut' (operation 1)");
    CHECK(x.gid() == "g");
  }
  engine k("g", {rec(1, record_kind::branch, 1, "A", 1)}, false);
  CHECK_THROWS_AS(k.start(record_kind::step, "A", none), wf::nondeterminism_error);
}

TEST_CASE("engine: the same operation reached as another branch id is non-determinism") {
  // Journaled as branch 1; the code now starts a step before it, so it would be branch 2.
  engine e("g", {rec(1, record_kind::branch, 2, "A", 1)}, false);
  e.start(record_kind::step, "new", none);
  try {
    e.start(record_kind::branch, "A", undo);
    FAIL("no error");
  } catch (const wf::nondeterminism_error& x) {
    CHECK(x.expected() == "branch 'A' (operation 2) as branch 2");
    CHECK(x.recorded() == "branch 'A' (operation 2) as branch 1");
  }
}

TEST_CASE("engine: an outcome becomes a record, and appending it finishes the operation") {
  engine e("g", {}, false);
  auto a = e.start(record_kind::branch, "A", undo);
  auto r = e.outcome(a.op, false, "ra");
  CHECK(r.kind == record_kind::branch);
  CHECK(r.op == 1);
  CHECK(r.branch == 1);
  CHECK(r.name == "A");
  CHECK(e.running() == 1);
  append(e, r);
  CHECK(e.running() == 0);
  CHECK(e.next_seq() == 2);
}

TEST_CASE("engine: appending out of order is refused") {
  engine e("g", {}, false);
  auto r = e.outcome(e.start(record_kind::branch, "A", undo).op, false, "");
  r.seq = 5;
  CHECK_THROWS_AS(e.appended({r}), std::logic_error);
}

TEST_CASE("engine: journaled operations the code never reached are reported, lowest id first") {
  engine e("g", {rec(1, record_kind::branch, 3, "C", 3), rec(2, record_kind::branch, 1, "A", 1),
                 rec(3, record_kind::branch, 2, "B", 2)},
           false);
  e.start(record_kind::branch, "A", undo);
  REQUIRE(e.unreached() != nullptr);
  CHECK(e.unreached()->name == "B");
}

TEST_CASE("engine: past a journaled decision, operations without an outcome halt") {
  engine e("g", {rec(1, record_kind::branch, 1, "A", 1), decision(2, false, "why")}, false);
  CHECK(e.start(record_kind::branch, "A", undo).what == start::replay);
  CHECK(e.start(record_kind::branch, "B", undo).what == start::halt);
  REQUIRE(e.decision() != nullptr);
  CHECK(e.decision()->payload == "why");
  // B was not in flight when the rollback was decided: it is not compensated.
  CHECK(names(e.plan(*e.decision())) == std::vector<std::string>{"rollback A"});
}

TEST_CASE("engine: a rollback compensates completed branches latest completion first, then in-flight ones first") {
  // A, B, C started together; C completed, then A; B was in flight when the rollback was decided.
  engine e("g",
           {rec(1, record_kind::branch, 3, "C", 3), rec(2, record_kind::branch, 1, "A", 1),
            decision(3, false, "retries exhausted", {2})},
           false);
  e.start(record_kind::branch, "A", undo);
  CHECK(e.start(record_kind::branch, "B", undo).what == start::halt);
  e.start(record_kind::branch, "C", undo);
  CHECK(names(e.plan(*e.decision())) == std::vector<std::string>{"rollback B", "rollback A", "rollback C"});
}

TEST_CASE("engine: a branch that failed is compensated only when asked, and a branch started after another finished goes first") {
  engine e("g", {}, false);
  auto a = e.start(record_kind::branch, "A", undo);
  append(e, e.outcome(a.op, false, ""));
  handler_set failed_too = undo;
  failed_too.compensate_on_failure = true;
  auto b = e.start(record_kind::branch, "B", failed_too);
  auto c = e.start(record_kind::branch, "C", undo);
  append(e, e.outcome(c.op, true, "no"));
  append(e, e.outcome(b.op, true, "no"));
  auto d = e.decide(false, "no");
  CHECK(d.in_flight.empty());
  append(e, d);
  CHECK(names(e.plan(*e.decision())) == std::vector<std::string>{"rollback B", "rollback A"});
  engine f("g", {}, true);  // compensate_failed_branch for the workflow
  auto x = f.start(record_kind::branch, "X", undo);
  append(f, f.outcome(x.op, true, "no"));
  append(f, f.decide(false, "no"));
  CHECK(names(f.plan(*f.decision())) == std::vector<std::string>{"rollback X"});
}

TEST_CASE("engine: commit runs on_commit in reverse completion order, then on_finish, skipping what is done") {
  engine e("g",
           {rec(1, record_kind::branch, 2, "B", 2), rec(2, record_kind::branch, 1, "A", 1), decision(3, true, "ok"),
            rec(4, record_kind::commit, 1, "A", 1)},
           false);
  e.start(record_kind::branch, "A", all);
  e.start(record_kind::branch, "B", all);
  CHECK(names(e.plan(*e.decision())) == std::vector<std::string>{"commit B", "finish A", "finish B"});
  auto h = e.plan(*e.decision()).front();
  auto r = engine::handler_record(h);
  CHECK(r.kind == record_kind::commit);
  CHECK(r.op == 2);
  CHECK(r.branch == 2);
}

TEST_CASE("engine: in closing mode, operations without an outcome are taken as in flight and the decision names them") {
  engine e("g", {rec(1, record_kind::branch, 1, "A", 1)}, false, true);
  CHECK(e.start(record_kind::branch, "A", undo).what == start::replay);
  CHECK(e.start(record_kind::value, "now", none).what == start::halt);
  CHECK(e.start(record_kind::branch, "B", undo).what == start::halt);
  auto d = e.decide(false, "deadline exceeded");
  CHECK(d.in_flight == std::vector<std::uint32_t>{3});
  append(e, d);
  CHECK(names(e.plan(*e.decision())) == std::vector<std::string>{"rollback B", "rollback A"});
}

TEST_CASE("engine: an operation whose outcome became unknown is in flight for a decision") {
  engine e("g", {}, false);
  auto a = e.start(record_kind::branch, "A", undo);
  e.unknown(a.op);
  CHECK(e.running() == 0);
  CHECK(e.decide(false, "x").in_flight == std::vector<std::uint32_t>{1});
}

TEST_CASE("engine: malformed journals are refused as corrupt") {
  using wf::detail::corrupt_journal_error;
  CHECK_THROWS_AS(engine("g", {rec(2, record_kind::branch, 1, "A")}, false), corrupt_journal_error);
  CHECK_THROWS_AS(engine("g", {decision(1, true), rec(2, record_kind::branch, 1, "A")}, false), corrupt_journal_error);
  CHECK_THROWS_AS(engine("g", {rec(1, record_kind::commit, 1, "A")}, false), corrupt_journal_error);
  CHECK_THROWS_AS(engine("g", {rec(1, static_cast<record_kind>(42), 1, "A")}, false), corrupt_journal_error);
  CHECK_THROWS_AS(engine("g", {rec(1, record_kind::branch, 1, "A"), rec(2, record_kind::branch, 1, "A")}, false),
                  corrupt_journal_error);
  CHECK_THROWS_AS(engine("g", {decision(1, false), rec(2, record_kind::rollback, 7, "X", 7)}, false),
                  corrupt_journal_error);
}

// ---- commands apart from completions

namespace {
journal_record pending(std::uint32_t seq, record_kind k, std::uint32_t op, std::string name, std::uint32_t branch) {
  auto r = rec(seq, k, op, std::move(name), branch);
  r.pending = true;
  return r;
}
journal_record completion(std::uint32_t seq, std::uint32_t op, std::string name, std::uint32_t branch,
                          bool failed = false, std::string payload = {}) {
  return rec(seq, record_kind::completion, op, std::move(name), branch, failed, std::move(payload));
}
}  // namespace

TEST_CASE("engine: a write while operations are in flight carries their commands once, by id, then their outcomes are completions") {
  engine e("g", {}, false);
  auto a = e.start(record_kind::branch, "A", undo);
  auto v = e.start(record_kind::value, "now", none);  // values are never pending
  auto b = e.start(record_kind::step, "B", none);
  auto c = e.start(record_kind::branch, "C", undo);
  // C's outcome is known first: its write carries the commands of A and B.
  auto rc = e.outcome(c.op, false, "rc");
  auto rv = e.outcome(v.op, false, "1");
  CHECK(rc.kind == record_kind::branch);  // no command was carried for C: one record for both
  auto cmds = e.commands();
  REQUIRE(cmds.size() == 2);
  CHECK(cmds[0].op == a.op);
  CHECK(cmds[0].kind == record_kind::branch);
  CHECK(cmds[0].name == "A");
  CHECK(cmds[0].branch == 1);
  CHECK(cmds[0].pending);
  CHECK(cmds[1].op == b.op);
  CHECK(cmds[1].kind == record_kind::step);
  CHECK(cmds[1].pending);
  CHECK(e.commands().empty());  // offered once
  for (auto& r : cmds) append(e, r);
  append(e, rv);
  append(e, rc);
  CHECK(e.running() == 2);  // A and B: a command journaled is not an outcome
  auto rb = e.outcome(b.op, true, "no");
  CHECK(rb.kind == record_kind::completion);
  CHECK(rb.op == b.op);
  CHECK(rb.name == "B");
  CHECK(rb.failed);
  CHECK(rb.payload == "no");
  append(e, rb);
  auto ra = e.outcome(a.op, false, "ra");
  CHECK(ra.kind == record_kind::completion);
  append(e, ra);
  CHECK(e.running() == 0);
  CHECK(e.commands().empty());
  // Compensation follows the completions' order: A (last) before C.
  CHECK(names(e.plan(e.decide(false, "x"))) == std::vector<std::string>{"rollback A", "rollback C"});
}

TEST_CASE("engine: an operation whose command is in a write under way completes with a completion record") {
  engine e("g", {}, false);
  auto a = e.start(record_kind::branch, "A", undo);
  auto b = e.start(record_kind::branch, "B", undo);
  auto rb = e.outcome(b.op, false, "rb");
  auto cmds = e.commands();  // the write of B's outcome, carrying A's command, is under way
  REQUIRE(cmds.size() == 1);
  auto ra = e.outcome(a.op, false, "ra");  // A ends before that write is durable
  CHECK(ra.kind == record_kind::completion);
  append(e, cmds[0]);
  append(e, rb);
  append(e, ra);
  CHECK(e.running() == 0);
}

TEST_CASE("engine: a pending command replays from its completion, or runs again without one") {
  const std::vector<journal_record> journal{
      pending(1, record_kind::branch, 1, "A", 1),   pending(2, record_kind::branch, 2, "B", 2),
      rec(3, record_kind::branch, 3, "C", 3, false, "rc"), completion(4, 2, "B", 2, false, "rb")};
  engine e("g", journal, false);
  CHECK(e.replaying());
  auto a = e.start(record_kind::branch, "A", undo);
  auto b = e.start(record_kind::branch, "B", undo);
  auto c = e.start(record_kind::branch, "C", undo);
  CHECK(a.what == start::run);  // in flight when the last run ended: asked again
  REQUIRE(b.what == start::replay);
  CHECK(b.record->payload == "rb");
  CHECK(b.record->kind == record_kind::completion);
  REQUIRE(c.what == start::replay);
  CHECK(c.record->payload == "rc");
  CHECK_FALSE(e.replaying());
  CHECK(e.commands().empty());  // A's command is journaled already
  auto ra = e.outcome(a.op, false, "ra");
  CHECK(ra.kind == record_kind::completion);
  append(e, ra);
  CHECK(names(e.plan(e.decide(false, "x"))) == std::vector<std::string>{"rollback A", "rollback B", "rollback C"});
}

TEST_CASE("engine: a pending command must match the code like any operation record") {
  engine e("g", {pending(1, record_kind::branch, 1, "A", 1)}, false);
  CHECK_THROWS_AS(e.start(record_kind::branch, "Other", undo), wf::nondeterminism_error);
  engine f("g", {pending(1, record_kind::branch, 1, "A", 1)}, false);
  CHECK(f.unreached() != nullptr);  // code that ends before reaching it is non-deterministic
  CHECK(f.unreached()->name == "A");
}

TEST_CASE("engine: a decision names pending operations in flight; past it they halt and are compensated") {
  const std::vector<journal_record> journal{pending(1, record_kind::branch, 1, "A", 1),
                                            rec(2, record_kind::branch, 2, "B", 2), decision(3, false, "x", {1})};
  engine e("g", journal, false);
  auto a = e.start(record_kind::branch, "A", undo);
  auto b = e.start(record_kind::branch, "B", undo);
  CHECK(a.what == start::halt);
  CHECK(b.what == start::replay);
  REQUIRE(e.decision());
  CHECK(names(e.plan(*e.decision())) == std::vector<std::string>{"rollback A", "rollback B"});
  // A handler record for a pending operation named in flight is valid.
  auto with_handler = journal;
  with_handler.push_back(rec(4, record_kind::rollback, 1, "A", 1));
  engine g("g", with_handler, false);
  g.start(record_kind::branch, "A", undo);
  g.start(record_kind::branch, "B", undo);
  CHECK(names(g.plan(*g.decision())) == std::vector<std::string>{"rollback B"});
}

TEST_CASE("engine: malformed commands and completions are refused as corrupt") {
  using wf::detail::corrupt_journal_error;
  // A completion with no pending command before it, or of a complete record.
  CHECK_THROWS_AS(engine("g", {completion(1, 1, "A", 1)}, false), corrupt_journal_error);
  CHECK_THROWS_AS(engine("g", {rec(1, record_kind::branch, 1, "A", 1), completion(2, 1, "A", 1)}, false),
                  corrupt_journal_error);
  // A completion naming another operation than its command.
  CHECK_THROWS_AS(engine("g", {pending(1, record_kind::branch, 1, "A", 1), completion(2, 1, "B", 1)}, false),
                  corrupt_journal_error);
  CHECK_THROWS_AS(engine("g", {pending(1, record_kind::branch, 1, "A", 1), completion(2, 1, "A", 2)}, false),
                  corrupt_journal_error);
  // Completed twice.
  CHECK_THROWS_AS(engine("g", {pending(1, record_kind::branch, 1, "A", 1), completion(2, 1, "A", 1),
                               completion(3, 1, "A", 1)},
                         false),
                  corrupt_journal_error);
  // A completion after the decision.
  CHECK_THROWS_AS(engine("g", {pending(1, record_kind::branch, 1, "A", 1), decision(2, false, "x", {1}),
                               completion(3, 1, "A", 1)},
                         false),
                  corrupt_journal_error);
  // A pending value, a pending record marked failed.
  CHECK_THROWS_AS(engine("g", {pending(1, record_kind::value, 1, "now", 0)}, false), corrupt_journal_error);
  auto failed = pending(1, record_kind::branch, 1, "A", 1);
  failed.failed = true;
  CHECK_THROWS_AS(engine("g", {failed}, false), corrupt_journal_error);
  // A handler record for a pending operation neither completed nor in flight.
  CHECK_THROWS_AS(engine("g", {pending(1, record_kind::branch, 1, "A", 1), decision(2, false, "x"),
                               rec(3, record_kind::rollback, 1, "A", 1)},
                         false),
                  corrupt_journal_error);
}

// ---- journals of the first format (no operation ids)

namespace {
journal_record v1(std::uint32_t seq, record_kind k, std::string name, std::uint32_t branch = 0, bool failed = false,
                  std::string payload = {}) {
  return journal_record{seq, k, std::move(name), branch, failed, std::move(payload)};
}
}  // namespace

TEST_CASE("engine: a first-format journal reads as operations numbered by position") {
  auto up = wf::detail::upgrade_journal("g", {v1(1, record_kind::value, "now", 0, false, "5"),
                                              v1(2, record_kind::branch, "A", 1), v1(3, record_kind::step, "S", 2)});
  REQUIRE(up.size() == 3);
  CHECK(up[0].op == 1);
  CHECK(up[1].op == 2);
  CHECK(up[2].op == 3);
  engine e("g", up, false);
  CHECK(e.start(record_kind::value, "now", none).what == start::replay);
  CHECK(e.start(record_kind::branch, "A", undo).what == start::replay);
  CHECK(e.start(record_kind::step, "S", none).what == start::replay);
  auto next = e.start(record_kind::branch, "B", undo);
  CHECK(next.what == start::run);
  CHECK(next.op == 4);
  CHECK(next.branch == 3);
}

TEST_CASE("engine: a first-format rollback decision's branch in flight becomes the next operation, and its handler records follow") {
  // now, TransOut (01), uuid, Audit (02), then TransIn (03) in flight when the rollback was decided.
  auto up = wf::detail::upgrade_journal(
      "g", {v1(1, record_kind::value, "now"), v1(2, record_kind::branch, "TransOut", 1), v1(3, record_kind::value, "uuid"),
            v1(4, record_kind::step, "Audit", 2), v1(5, record_kind::decision, "rollback", 3, true, "retries exhausted"),
            v1(6, record_kind::rollback, "TransIn", 3)});
  CHECK(up[4].in_flight == std::vector<std::uint32_t>{5});
  CHECK(up[4].branch == 0);
  CHECK(up[5].op == 5);
  engine e("g", up, false);
  e.start(record_kind::value, "now", none);
  e.start(record_kind::branch, "TransOut", undo);
  e.start(record_kind::value, "uuid", none);
  e.start(record_kind::step, "Audit", none);
  CHECK(e.start(record_kind::branch, "TransIn", undo).what == start::halt);
  CHECK(names(e.plan(*e.decision())) == std::vector<std::string>{"rollback TransOut"});
}

TEST_CASE("engine: a first-format journal continued in the new format reads as one") {
  auto up = wf::detail::upgrade_journal("g", {v1(1, record_kind::branch, "A", 1), rec(2, record_kind::branch, 2, "B", 2),
                                              decision(3, true), rec(4, record_kind::commit, 2, "B", 2),
                                              v1(5, record_kind::commit, "A", 1)});
  CHECK(up[0].op == 1);
  CHECK(up[1].op == 2);
  CHECK(up[4].op == 1);
  CHECK_THROWS_AS(wf::detail::upgrade_journal("g", {v1(1, record_kind::commit, "A", 9)}),
                  wf::detail::corrupt_journal_error);
}

TEST_CASE("the retry interval starts at the initial one, grows, is capped, and ongoing keeps it") {
  wf::retry_policy p;
  p.initial_interval = std::chrono::milliseconds(100);
  p.coefficient = 3.0;
  p.max_interval = std::chrono::milliseconds(500);
  using ms = std::chrono::milliseconds;
  CHECK(p.next_interval(ms(0), true) == ms(100));
  CHECK(p.next_interval(ms(100), true) == ms(300));
  CHECK(p.next_interval(ms(300), true) == ms(500));
  CHECK(p.next_interval(ms(300), false) == ms(300));
  CHECK(p.next_interval(ms(0), false) == ms(100));
}
