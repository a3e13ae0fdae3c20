// The replay engine on its own: pure logic over a journal, no I/O.
#include "runtime/replay.hpp"

#include <wf/errors.hpp>

#include <catch2/catch.hpp>

using wf::journal_record;
using wf::record_kind;
using wf::detail::replay_cursor;

namespace {
journal_record rec(std::uint32_t seq, record_kind k, std::string name, bool failed = false, std::string payload = {},
                   std::uint32_t branch = 0) {
  return journal_record{seq, k, std::move(name), branch, failed, std::move(payload)};
}
}  // namespace

TEST_CASE("an empty journal asks for every step to run fresh") {
  replay_cursor c("g", {});
  auto s = c.next(record_kind::branch, "A");
  CHECK(s.kind == replay_cursor::next_kind::fresh);
  CHECK(s.seq == 1);
  CHECK_FALSE(c.replaying());
}

TEST_CASE("journaled steps are replayed in order with their outcomes") {
  replay_cursor c("g", {rec(1, record_kind::branch, "A", false, "ra", 1), rec(2, record_kind::value, "now", false, "5")});
  CHECK(c.replaying());
  auto a = c.next(record_kind::branch, "A");
  REQUIRE(a.kind == replay_cursor::next_kind::replayed);
  CHECK(a.record->payload == "ra");
  auto v = c.next(record_kind::value, "now");
  REQUIRE(v.kind == replay_cursor::next_kind::replayed);
  CHECK(v.record->payload == "5");
  auto f = c.next(record_kind::branch, "B");
  CHECK(f.kind == replay_cursor::next_kind::fresh);
  CHECK(f.seq == 3);
}

TEST_CASE("a different name at a journaled position is non-determinism naming both") {
  replay_cursor c("g", {rec(1, record_kind::branch, "TransOut")});
  try {
    c.next(record_kind::branch, "TransIn");
    FAIL("no error");
  } catch (const wf::nondeterminism_error& e) {
    CHECK(e.expected() == "branch 'TransIn' at #1");
    CHECK(e.recorded() == "branch 'TransOut' at #1");
    CHECK(e.gid() == "g");
  }
}

TEST_CASE("a different kind at a journaled position is non-determinism") {
  replay_cursor c("g", {rec(1, record_kind::branch, "A")});
  CHECK_THROWS_AS(c.next(record_kind::step, "A"), wf::nondeterminism_error);
}

TEST_CASE("steps past a journaled decision halt") {
  replay_cursor c("g", {rec(1, record_kind::branch, "A"), rec(2, record_kind::decision, "rollback", true, "why")});
  c.next(record_kind::branch, "A");
  CHECK(c.next(record_kind::branch, "B").kind == replay_cursor::next_kind::halt);
  REQUIRE(c.decision() != nullptr);
  CHECK(c.decision()->payload == "why");
}

TEST_CASE("unreached journaled steps are reported") {
  replay_cursor c("g", {rec(1, record_kind::branch, "A"), rec(2, record_kind::branch, "B")});
  c.next(record_kind::branch, "A");
  REQUIRE(c.unreached() != nullptr);
  CHECK(c.unreached()->name == "B");
}

TEST_CASE("handler records after the decision are found by kind and branch") {
  replay_cursor c("g", {rec(1, record_kind::branch, "A", false, "", 1), rec(2, record_kind::decision, "commit"),
                        rec(3, record_kind::commit, "A", false, "", 1)});
  CHECK(c.handler_done(record_kind::commit, 1));
  CHECK_FALSE(c.handler_done(record_kind::finish, 1));
  CHECK_FALSE(c.handler_done(record_kind::commit, 2));
}

TEST_CASE("appended records move the cursor on") {
  replay_cursor c("g", {});
  c.appended(rec(1, record_kind::branch, "A"));
  CHECK(c.next_seq() == 2);
  CHECK(c.next(record_kind::branch, "B").seq == 2);
  c.appended(rec(2, record_kind::decision, "commit"));
  CHECK(c.decision() != nullptr);
}

TEST_CASE("malformed journals are refused as corrupt") {
  using wf::detail::corrupt_journal_error;
  CHECK_THROWS_AS(replay_cursor("g", {rec(2, record_kind::branch, "A")}), corrupt_journal_error);
  CHECK_THROWS_AS(replay_cursor("g", {rec(1, record_kind::decision, "x"), rec(2, record_kind::branch, "A")}),
                  corrupt_journal_error);
  CHECK_THROWS_AS(replay_cursor("g", {rec(1, record_kind::commit, "A")}), corrupt_journal_error);
  CHECK_THROWS_AS(replay_cursor("g", {rec(1, static_cast<record_kind>(42), "A")}), corrupt_journal_error);
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
