// Every store keeps the store contract: fencing, append-only, leases, purge.
// Each case runs against the memory store and, when a database is given, Postgres.
#include "support.hpp"

#include <set>

using namespace wf_test;

namespace {
wf::workflow_state new_state(std::string gid, std::string owner = "me") {
  wf::workflow_state s;
  s.gid = std::move(gid);
  s.name = "w";
  s.owner = std::move(owner);
  s.lease_expires = wf::wall_clock::now() + std::chrono::seconds(30);
  return s;
}
wf::write one(std::string gid, std::uint64_t epoch, std::uint32_t seq) {
  wf::write w;
  w.gid = std::move(gid);
  w.epoch = epoch;
  w.records.push_back(wf::journal_record{seq, wf::record_kind::branch, "A", 1, false, "r"});
  return w;
}
wf::write_status commit(asio::io_context& io, wf::store& s, wf::write w) {
  std::vector<wf::write> ws;
  ws.push_back(std::move(w));
  return run(io, s.commit(std::move(ws))).at(0);
}
}  // namespace

TEST_CASE("create inserts once and returns the existing workflow after that") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  auto& s = *store;
  CHECK(run(io, s.create(new_state("g"))).created);
  auto again = run(io, s.create(new_state("g", "other")));
  CHECK_FALSE(again.created);
  CHECK(again.state.owner == "me");
  CHECK(again.state.epoch == 1);
}

TEST_CASE("a write from a stale epoch is fenced and changes nothing") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  auto& s = *store;
  run(io, s.create(new_state("g")));
  auto c = run(io, s.claim("g", "me", std::chrono::seconds(30)));
  REQUIRE(c.status == wf::claim_status::claimed);
  CHECK(c.state.epoch == 2);
  CHECK(commit(io, s, one("g", 1, 1)) == wf::write_status::fenced);
  CHECK(run(io, s.journal("g")).empty());
  CHECK(commit(io, s, one("g", 2, 1)) == wf::write_status::ok);
}

TEST_CASE("a record is never overwritten or appended out of order") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  auto& s = *store;
  run(io, s.create(new_state("g")));
  CHECK(commit(io, s, one("g", 1, 1)) == wf::write_status::ok);
  CHECK(commit(io, s, one("g", 1, 1)) == wf::write_status::conflict);
  CHECK(commit(io, s, one("g", 1, 3)) == wf::write_status::conflict);
  CHECK(run(io, s.journal("g")).size() == 1);
}

TEST_CASE("each write of a batch succeeds or is refused on its own") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  auto& s = *store;
  run(io, s.create(new_state("a")));
  run(io, s.create(new_state("b")));
  std::vector<wf::write> ws;
  ws.push_back(one("a", 1, 1));
  ws.push_back(one("b", 7, 1));
  auto st = run(io, s.commit(std::move(ws)));
  CHECK(st == std::vector<wf::write_status>{wf::write_status::ok, wf::write_status::fenced});
}

TEST_CASE("a live lease of another owner makes a claim busy until it expires") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  auto& s = *store;
  auto st = new_state("g", "other");
  st.lease_expires = wf::wall_clock::now() + std::chrono::hours(1);
  run(io, s.create(st));
  CHECK(run(io, s.claim("g", "me", std::chrono::seconds(1))).status == wf::claim_status::busy);
  CHECK(run(io, s.runnable("me", 10)).empty());
  auto expired = new_state("h", "other");
  expired.lease_expires = wf::wall_clock::now() - std::chrono::seconds(1);
  run(io, s.create(expired));
  CHECK(run(io, s.runnable("me", 10)).size() == 1);
  CHECK(run(io, s.claim("h", "me", std::chrono::seconds(1))).status == wf::claim_status::claimed);
  CHECK(run(io, s.renew("me", {"g", "h"}, std::chrono::seconds(1))) == std::vector<std::string>{"g"});
}

TEST_CASE("a finished workflow cannot be claimed") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  auto& s = *store;
  run(io, s.create(new_state("g")));
  auto w = one("g", 1, 1);
  w.new_progress = wf::progress{wf::workflow_status::succeeded, "r", 0, "", {}};
  REQUIRE(commit(io, s, std::move(w)) == wf::write_status::ok);
  CHECK(run(io, s.claim("g", "me", std::chrono::seconds(1))).status == wf::claim_status::finished);
  CHECK(run(io, s.claim("nope", "me", std::chrono::seconds(1))).status == wf::claim_status::not_found);
}

TEST_CASE("a journal reads back exactly what was written, bytes included") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  run(io, store->create(new_state("g")));
  wf::write w;
  w.gid = "g";
  w.epoch = 1;
  w.records.push_back(wf::journal_record{1, wf::record_kind::branch, "A", 1, false, std::string("a\0b\xff", 4)});
  w.records.push_back(wf::journal_record{2, wf::record_kind::value, "uuid", 0, false, "x"});
  w.records.push_back(wf::journal_record{3, wf::record_kind::decision, "rollback", 1, true, "why"});
  auto expected = w.records;
  REQUIRE(commit(io, *store, std::move(w)) == wf::write_status::ok);
  CHECK(run(io, store->journal("g")) == expected);
}

TEST_CASE("progress is written with the records and read back") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  run(io, store->create(new_state("g")));
  auto w = one("g", 1, 1);
  const auto next = wf::wall_clock::now() + std::chrono::seconds(5);
  w.new_progress = wf::progress{wf::workflow_status::running, "", 3, "boom", next};
  REQUIRE(commit(io, *store, std::move(w)) == wf::write_status::ok);
  auto st = run(io, store->find("g"));
  REQUIRE(st);
  CHECK(st->attempts == 3);
  CHECK(st->last_error == "boom");
  CHECK(std::chrono::abs(st->next_attempt_at - next) < std::chrono::milliseconds(1));
}

TEST_CASE("claim_due takes enqueued and abandoned workflows, not live ones or the caller's own") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  auto enqueued = new_state("enqueued", "");
  enqueued.lease_expires = wf::wall_clock::now();
  run(io, store->create(enqueued));
  auto abandoned = new_state("abandoned", "dead-runner");
  abandoned.lease_expires = wf::wall_clock::now() - std::chrono::seconds(1);
  run(io, store->create(abandoned));
  run(io, store->create(new_state("live", "other")));
  auto mine = new_state("mine", "me");
  mine.lease_expires = wf::wall_clock::now() - std::chrono::seconds(1);
  run(io, store->create(mine));
  auto claimed = run(io, store->claim_due("me", std::chrono::seconds(30), 10));
  std::set<std::string> gids;
  for (const auto& c : claimed) {
    CHECK(c.status == wf::claim_status::claimed);
    CHECK(c.state.owner == "me");
    CHECK(c.state.epoch == 2);
    gids.insert(c.state.gid);
  }
  CHECK(gids == std::set<std::string>{"abandoned", "enqueued"});
  CHECK(run(io, store->claim_due("me", std::chrono::seconds(30), 10)).empty());
}

TEST_CASE("purge deletes finished workflows older than the cut-off, never unfinished ones") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  run(io, store->create(new_state("done")));
  run(io, store->create(new_state("running")));
  auto w = one("done", 1, 1);
  w.new_progress = wf::progress{wf::workflow_status::succeeded, "r", 0, "", {}};
  REQUIRE(commit(io, *store, std::move(w)) == wf::write_status::ok);
  CHECK(run(io, store->purge(wf::wall_clock::now() - std::chrono::hours(1))) == 0);
  CHECK(run(io, store->purge(wf::wall_clock::now() + std::chrono::seconds(1))) == 1);
  CHECK_FALSE(run(io, store->find("done")));
  CHECK(run(io, store->journal("done")).empty());
  CHECK(run(io, store->find("running")));
}
