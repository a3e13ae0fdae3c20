// Every store keeps the store contract: fencing, append-only, leases, purge, inboxes.
// Each case runs against the memory store and, when a database is given, Postgres.
#include "support.hpp"

#include <algorithm>
#include <cstdio>
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
  CHECK(run(io, s.scheduling()->runnable("me", 10)).empty());
  auto expired = new_state("h", "other");
  expired.lease_expires = wf::wall_clock::now() - std::chrono::seconds(1);
  run(io, s.create(expired));
  CHECK(run(io, s.scheduling()->runnable("me", 10)).size() == 1);
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
  w.records.push_back(wf::journal_record{1, wf::record_kind::step, "C", 2, false, "", 3, {}, true});  // pending
  w.records.push_back(wf::journal_record{2, wf::record_kind::branch, "A", 1, false, std::string("a\0b\xff", 4), 2});
  w.records.push_back(wf::journal_record{3, wf::record_kind::value, "uuid", 0, false, "x", 1});
  w.records.push_back(wf::journal_record{4, wf::record_kind::completion, "C", 2, true, "no", 3});
  w.records.push_back(wf::journal_record{5, wf::record_kind::decision, "rollback", 0, true, "why", 0, {3, 4}});
  w.records.push_back(wf::journal_record{6, wf::record_kind::rollback, "A", 1, false, "", 2});
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

namespace {
wf::claim_request request(std::size_t limit, std::vector<std::string> names = {}) {
  wf::claim_request r;
  r.owner = "me";
  r.lease = std::chrono::seconds(30);
  r.limit = limit;
  r.names = std::move(names);
  return r;
}
}  // namespace

TEST_CASE("claim_due takes enqueued, abandoned and lapsed workflows, the caller's own included, not live ones") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  auto enqueued = new_state("enqueued", "");
  enqueued.lease_expires = wf::wall_clock::now();
  run(io, store->create(enqueued));
  auto abandoned = new_state("abandoned", "dead-runner");
  abandoned.lease_expires = wf::wall_clock::now() - std::chrono::seconds(1);
  run(io, store->create(abandoned));
  run(io, store->create(new_state("live", "other")));
  run(io, store->create(new_state("mine-live", "me")));
  auto mine = new_state("mine", "me");
  mine.lease_expires = wf::wall_clock::now() - std::chrono::seconds(1);
  run(io, store->create(mine));
  auto claimed = run(io, store->scheduling()->claim_due(request(10)));
  std::set<std::string> gids;
  for (const auto& c : claimed) {
    CHECK(c.status == wf::claim_status::claimed);
    CHECK(c.state.owner == "me");
    CHECK(c.state.epoch == 2);
    gids.insert(c.state.gid);
  }
  CHECK(gids == std::set<std::string>{"abandoned", "enqueued", "mine"});
  CHECK(run(io, store->scheduling()->claim_due(request(10))).empty());
}

TEST_CASE("claim_due and claim_resumable take only the names asked for") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  auto a = new_state("a", "");
  auto b = new_state("b", "");
  b.name = "other";
  a.lease_expires = b.lease_expires = wf::wall_clock::now();
  run(io, store->create(a));
  run(io, store->create(b));
  auto claimed = run(io, store->scheduling()->claim_due(request(10, {"nobody"})));
  CHECK(claimed.empty());
  claimed = run(io, store->scheduling()->claim_resumable(request(10, {"other"})));
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].state.gid == "b");
}

TEST_CASE("claim_resumable pages in gid order, leaves the excluded alone, and returns the journals") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  for (const char* gid : {"w1", "w2", "w3", "w4", "w5"}) run(io, store->create(new_state(gid, "me")));
  REQUIRE(commit(io, *store, one("w2", 1, 1)) == wf::write_status::ok);
  auto r = request(2);
  r.exclude = {"w3"};
  auto page1 = run(io, store->scheduling()->claim_resumable(r));
  REQUIRE(page1.size() == 2);
  CHECK(page1[0].state.gid == "w1");
  CHECK(page1[1].state.gid == "w2");
  CHECK(page1[1].journal.size() == 1);
  r.after = page1.back().state.gid;
  auto page2 = run(io, store->scheduling()->claim_resumable(r));
  REQUIRE(page2.size() == 2);
  CHECK(page2[0].state.gid == "w4");
  CHECK(page2[1].state.gid == "w5");
  r.after = "w5";
  CHECK(run(io, store->scheduling()->claim_resumable(r)).empty());
  CHECK(run(io, store->find("w3"))->epoch == 1);
}

TEST_CASE("claim_resumable pages of many workflows come in gid order, so that paging claims each one once") {
  // PostgreSQL's UPDATE ... RETURNING follows no order: pages came back out
  // of order (seen in scripts/bench's recovery scenario, not reproduced
  // here, where the plan keeps the order), so the next page, after the last
  // gid, claimed some again and recover() fenced what it had just resumed.
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  constexpr int count = 1000, page_size = 128;  // pages large enough for a hash join
  std::vector<std::string> gids;
  for (int i = 0; i < count; ++i) {
    char gid[16];
    std::snprintf(gid, sizeof gid, "g%04d", (i * 7919) % count);  // created out of order
    gids.push_back(gid);
  }
  std::vector<wf::workflow_state> states;
  for (const auto& gid : gids) states.push_back(new_state(gid, "me"));
  for (auto& s : states) run(io, store->create(s));
  std::sort(gids.begin(), gids.end());
  auto r = request(page_size);
  std::vector<std::string> claimed;
  for (;;) {
    auto page = run(io, store->scheduling()->claim_resumable(r));
    for (const auto& c : page) claimed.push_back(c.state.gid);
    if (page.size() < page_size) break;
    r.after = page.back().state.gid;
  }
  CHECK(claimed == gids);
  for (const auto& gid : gids) CHECK(run(io, store->find(gid))->epoch == 2);
}

TEST_CASE("release gives a workflow up at once: fenced, no owner, due now, claimable by anyone") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  run(io, store->create(new_state("g", "me")));
  run(io, store->create(new_state("theirs", "other")));
  std::atomic<int> announced{0};
  auto sub = store->notifications()->on_new_work([&] { ++announced; });
  run(io, store->release("me", {"g", "theirs", "missing"}));
  auto st = run(io, store->find("g"));
  REQUIRE(st);
  CHECK(st->owner.empty());
  CHECK(st->epoch == 2);
  CHECK(run(io, store->find("theirs"))->owner == "other");
  CHECK(commit(io, *store, one("g", 1, 1)) == wf::write_status::fenced);
  auto r = request(10);
  r.owner = "someone";
  auto claimed = run(io, store->scheduling()->claim_due(r));
  REQUIRE(claimed.size() == 1);
  CHECK(claimed[0].state.gid == "g");
  if (dynamic_cast<wf::memory_store*>(store.get())) CHECK(announced > 0);  // (Postgres: NOTIFY, asynchronous)
}

TEST_CASE("a subscription for new work stops its callback when it ends") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  std::atomic<int> calls{0};
  auto sub = store->notifications()->on_new_work([&] { ++calls; });
  sub.reset();
  const int before = calls;
  auto enqueued = new_state("g", "");
  run(io, store->create(enqueued));
  CHECK(calls == before);
}

TEST_CASE("resume makes a stuck workflow runnable again, and nothing else") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  run(io, store->create(new_state("g", "me")));
  run(io, store->create(new_state("running", "me")));
  auto w = one("g", 1, 1);
  w.new_progress = wf::progress{wf::workflow_status::stuck, "a bug", 4, "boom", {}};
  REQUIRE(commit(io, *store, std::move(w)) == wf::write_status::ok);
  CHECK(run(io, store->admin()->resume("g")));
  auto st = run(io, store->find("g"));
  REQUIRE(st);
  CHECK(st->status == wf::workflow_status::running);
  CHECK(st->result.empty());
  CHECK(st->attempts == 0);
  CHECK(st->owner.empty());
  CHECK(st->epoch == 2);
  CHECK(run(io, store->journal("g")).size() == 1);
  CHECK_FALSE(run(io, store->admin()->resume("g")));
  CHECK_FALSE(run(io, store->admin()->resume("running")));
  CHECK_FALSE(run(io, store->admin()->resume("missing")));
}

namespace {
// Creates `gid` as a workflow of `name`, finished with `status` unless running.
void listed(asio::io_context& io, wf::store& store, const std::string& gid, const std::string& name,
            wf::workflow_status status = wf::workflow_status::running, const std::string& owner = "me") {
  auto s = new_state(gid, owner);
  s.name = name;
  s.created_at = s.updated_at = wf::wall_clock::now();
  run(io, store.create(s));
  if (status == wf::workflow_status::running) return;
  auto w = one(gid, 1, 1);
  w.new_progress = wf::progress{status, "r", 0, "", {}};
  REQUIRE(commit(io, store, std::move(w)) == wf::write_status::ok);
}

std::vector<std::string> gids_of(const wf::workflow_page& page) {
  std::vector<std::string> out;
  for (const auto& s : page.workflows) out.push_back(s.gid);
  return out;
}
}  // namespace

TEST_CASE("list pages through the workflows a query selects, in gid order, with a cursor and a count") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  auto& admin = *store->admin();
  listed(io, *store, "a1", "order");
  listed(io, *store, "a2", "order", wf::workflow_status::failed);
  listed(io, *store, "a3", "refund", wf::workflow_status::failed);
  listed(io, *store, "a4", "order", wf::workflow_status::succeeded, "other");
  listed(io, *store, "a5", "order", wf::workflow_status::failed);
  listed(io, *store, "a6", "order", wf::workflow_status::failed);

  // Everything, two at a time: the cursor walks the gids in order.
  wf::workflow_query all;
  all.limit = 2;
  all.count = true;
  auto page = run(io, admin.list(all));
  CHECK(gids_of(page) == std::vector<std::string>{"a1", "a2"});
  CHECK(page.next == "a2");
  CHECK(page.total == 6u);
  all.after = page.next;
  page = run(io, admin.list(all));
  CHECK(gids_of(page) == std::vector<std::string>{"a3", "a4"});
  CHECK(page.total == 6u);  // the count is of every match, not of what follows the cursor
  all.after = "a4";
  page = run(io, admin.list(all));
  CHECK(gids_of(page) == std::vector<std::string>{"a5", "a6"});
  CHECK(page.next.empty());  // the last page

  // Filters, together.
  wf::workflow_query failed_orders;
  failed_orders.name = "order";
  failed_orders.status = wf::workflow_status::failed;
  failed_orders.count = true;
  page = run(io, admin.list(failed_orders));
  CHECK(gids_of(page) == std::vector<std::string>{"a2", "a5", "a6"});
  CHECK(page.total == 3u);
  CHECK(page.workflows[0].name == "order");
  CHECK(page.workflows[0].status == wf::workflow_status::failed);
  CHECK(page.workflows[0].result == "r");

  wf::workflow_query by_owner;
  by_owner.owner = "other";
  CHECK(gids_of(run(io, admin.list(by_owner))) == std::vector<std::string>{"a4"});
  CHECK_FALSE(run(io, admin.list(by_owner)).total);  // not asked for

  wf::workflow_query recent;
  recent.created_from = wf::wall_clock::now() - std::chrono::hours(1);
  CHECK(run(io, admin.list(recent)).workflows.size() == 6);
  recent.created_until = recent.created_from;
  CHECK(run(io, admin.list(recent)).workflows.empty());

  wf::workflow_query none;
  none.name = "missing";
  none.count = true;
  page = run(io, admin.list(none));
  CHECK(page.workflows.empty());
  CHECK(page.next.empty());
  CHECK(page.total == 0u);
}

TEST_CASE("list takes its filters as values: text that looks like SQL matches nothing and harms nothing") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  listed(io, *store, "g1", "order");
  const std::vector<std::string> attempts = {"' OR '1'='1", "order'; DROP TABLE workflows; --", "order\\",
                                             "$1", "\"order\"", "order' --"};
  for (const auto& text : attempts) {
    wf::workflow_query q;
    q.name = text;
    q.count = true;
    auto page = run(io, store->admin()->list(q));
    CHECK(page.workflows.empty());
    CHECK(page.total == 0u);
    wf::workflow_query o;
    o.owner = text;
    o.after = text;
    CHECK(run(io, store->admin()->list(o)).workflows.empty());
  }
  // The table is still there, with its workflow.
  CHECK(run(io, store->find("g1")));
  wf::workflow_query q;
  q.name = "order";
  CHECK(run(io, store->admin()->list(q)).workflows.size() == 1);
}

TEST_CASE("list refuses a page size of 0 or above the maximum, and a time range that ends before it starts") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  wf::workflow_query q;
  q.limit = 0;
  CHECK_THROWS_AS(run(io, store->admin()->list(q)), std::invalid_argument);
  q.limit = wf::workflow_query::max_limit + 1;
  CHECK_THROWS_AS(run(io, store->admin()->list(q)), std::invalid_argument);
  q.limit = wf::workflow_query::max_limit;
  CHECK(run(io, store->admin()->list(q)).workflows.empty());
  q.created_from = wf::wall_clock::now();
  q.created_until = *q.created_from - std::chrono::seconds(1);
  CHECK_THROWS_AS(run(io, store->admin()->list(q)), std::invalid_argument);
}

TEST_CASE("a store wrapper forwards every operation and capability") {
  asio::io_context io;
  auto inner = make_store(WF_EACH_STORE);
  auto store = std::make_shared<wf::store_wrapper>(inner);
  REQUIRE(store->scheduling());
  REQUIRE(store->notifications());
  REQUIRE(store->admin());
  REQUIRE(store->messages());
  run(io, store->create(new_state("g", "")));
  CHECK(run(io, store->messages()->send(wf::message{"g", "t", "p", "k"}, false)) == wf::send_status::delivered);
  CHECK(run(io, inner->messages()->inbox("g", "t", 10)).size() == 1);
  CHECK(run(io, store->scheduling()->claim_due(request(10))).size() == 1);
  CHECK(run(io, store->renew("me", {"g"}, std::chrono::seconds(1))).empty());
  CHECK(run(io, inner->find("g"))->owner == "me");
  CHECK(gids_of(run(io, store->admin()->list({}))) == std::vector<std::string>{"g"});
}

TEST_CASE("purge deletes finished workflows older than the cut-off, never unfinished ones") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  run(io, store->create(new_state("done")));
  run(io, store->create(new_state("running")));
  auto w = one("done", 1, 1);
  w.new_progress = wf::progress{wf::workflow_status::succeeded, "r", 0, "", {}};
  REQUIRE(commit(io, *store, std::move(w)) == wf::write_status::ok);
  CHECK(run(io, store->admin()->purge(wf::wall_clock::now() - std::chrono::hours(1), 10)) == 0);
  CHECK(run(io, store->admin()->purge(wf::wall_clock::now() + std::chrono::seconds(1), 10)) == 1);
  CHECK_FALSE(run(io, store->find("done")));
  CHECK(run(io, store->journal("done")).empty());
  CHECK(run(io, store->find("running")));
}

TEST_CASE("purge deletes at most the limit it is given") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  for (int i = 0; i < 5; ++i) {
    const auto gid = "done-" + std::to_string(i);
    run(io, store->create(new_state(gid)));
    auto w = one(gid, 1, 1);
    w.new_progress = wf::progress{wf::workflow_status::succeeded, "r", 0, "", {}};
    REQUIRE(commit(io, *store, std::move(w)) == wf::write_status::ok);
  }
  const auto later = wf::wall_clock::now() + std::chrono::seconds(1);
  CHECK(run(io, store->admin()->purge(later, 2)) == 2);
  CHECK(run(io, store->admin()->purge(later, 10)) == 3);
}

TEST_CASE("renewing a finished, missing or released workflow reports it lost") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  run(io, store->create(new_state("done", "me")));
  run(io, store->create(new_state("released", "me")));
  auto w = one("done", 1, 1);
  w.new_progress = wf::progress{wf::workflow_status::succeeded, "r", 0, "", {}};
  REQUIRE(commit(io, *store, std::move(w)) == wf::write_status::ok);
  run(io, store->release("me", {"released"}));
  auto lost = run(io, store->renew("me", {"done", "released", "missing"}, std::chrono::seconds(1)));
  std::sort(lost.begin(), lost.end());
  CHECK(lost == std::vector<std::string>{"done", "missing", "released"});
}

// ---- the same faults wf::testing::check_crash_recovery injects, at the store
// level: what a store must guarantee for the runtime to recover from each.

namespace {
using wf::testing::crashing_store;
using wf::testing::fault;
using wf::testing::fault_point;

std::shared_ptr<crashing_store> faulty(std::shared_ptr<wf::store> inner, fault kind, fault_point point) {
  return std::make_shared<crashing_store>(std::move(inner), crashing_store::plan{kind, point, 1, "taker"});
}
}  // namespace

TEST_CASE("every store, through the three faults at a journal write: refused leaves nothing, in doubt landed once, fenced after a takeover") {
  asio::io_context io;
  auto inner = make_store(WF_EACH_STORE);
  run(io, inner->create(new_state("g")));

  SECTION("refused: nothing applied, and the dead process can do nothing more") {
    auto s = faulty(inner, fault::refuse, fault_point::write);
    CHECK_THROWS_AS(commit(io, *s, one("g", 1, 1)), wf::testing::injected_crash);
    CHECK(s->crashed());
    CHECK(run(io, inner->journal("g")).empty());
    CHECK(run(io, inner->find("g"))->epoch == 1);
    CHECK_THROWS_AS(run(io, s->journal("g")), wf::testing::injected_crash);
    // The next process writes the same record: it was never there.
    CHECK(commit(io, *inner, one("g", 1, 1)) == wf::write_status::ok);
  }
  SECTION("in doubt: applied although reported failed; redone blindly it is a conflict, never a second copy") {
    auto s = faulty(inner, fault::in_doubt, fault_point::write);
    CHECK_THROWS_AS(commit(io, *s, one("g", 1, 1)), wf::testing::injected_crash);
    CHECK_FALSE(s->crashed());
    const auto j = run(io, s->journal("g"));  // what the runtime does next: re-read
    REQUIRE(j.size() == 1);
    CHECK(j[0].name == "A");
    CHECK(commit(io, *s, one("g", 1, 1)) == wf::write_status::conflict);
    CHECK(run(io, inner->journal("g")).size() == 1);
    CHECK(commit(io, *s, one("g", 1, 2)) == wf::write_status::ok);  // going on from what was read
  }
  SECTION("takeover: another runner claimed first, so the write is fenced and nothing of it applied") {
    auto s = faulty(inner, fault::takeover, fault_point::write);
    CHECK(commit(io, *s, one("g", 1, 1)) == wf::write_status::fenced);
    CHECK(s->faulted());
    const auto st = run(io, inner->find("g"));
    CHECK(st->owner == "taker");
    CHECK(st->epoch == 2);
    CHECK(run(io, inner->journal("g")).empty());
    CHECK(commit(io, *inner, one("g", 2, 1)) == wf::write_status::ok);  // the taker's write lands
  }
}

TEST_CASE("every store, through the faults at a claim: refused claims nothing, in doubt claimed and claimable again by the same owner") {
  asio::io_context io;
  auto inner = make_store(WF_EACH_STORE);
  run(io, inner->create(new_state("g", "")));
  REQUIRE(commit(io, *inner, one("g", 1, 1)) == wf::write_status::ok);

  SECTION("refused") {
    auto s = faulty(inner, fault::refuse, fault_point::claim);
    CHECK_THROWS_AS(run(io, s->claim("g", "me", std::chrono::seconds(30))), wf::testing::injected_crash);
    const auto st = run(io, inner->find("g"));
    CHECK(st->owner.empty());
    CHECK(st->epoch == 1);
  }
  SECTION("in doubt, by gid") {
    auto s = faulty(inner, fault::in_doubt, fault_point::claim);
    CHECK_THROWS_AS(run(io, s->claim("g", "me", std::chrono::seconds(30))), wf::testing::injected_crash);
    CHECK(run(io, inner->find("g"))->owner == "me");
    // The owner asking again gets it (a new epoch) with the whole journal; no one else does.
    CHECK(run(io, inner->claim("g", "other", std::chrono::seconds(30))).status == wf::claim_status::busy);
    const auto again = run(io, s->claim("g", "me", std::chrono::seconds(30)));
    REQUIRE(again.status == wf::claim_status::claimed);
    CHECK(again.state.epoch == 3);
    CHECK(again.journal.size() == 1);
  }
  SECTION("in doubt, through the poller's claim_due") {
    auto s = faulty(inner, fault::in_doubt, fault_point::claim);
    CHECK_THROWS_AS(run(io, s->scheduling()->claim_due(request(10))), wf::testing::injected_crash);
    CHECK(run(io, inner->find("g"))->owner == "me");
    // Held now, so no poller takes it, the claimer included; a restarted claimer resumes it.
    CHECK(run(io, s->scheduling()->claim_due(request(10))).empty());
    const auto resumed = run(io, s->scheduling()->claim_resumable(request(10)));
    REQUIRE(resumed.size() == 1);
    CHECK(resumed[0].state.gid == "g");
    CHECK(resumed[0].journal.size() == 1);
  }
}

TEST_CASE("every store, through the faults at a lease renewal: in doubt the lease was extended, after a takeover it is reported lost") {
  asio::io_context io;
  auto inner = make_store(WF_EACH_STORE);
  run(io, inner->create(new_state("g", "me")));

  SECTION("refused") {
    auto s = faulty(inner, fault::refuse, fault_point::renewal);
    CHECK_THROWS_AS(run(io, s->renew("me", {"g"}, std::chrono::seconds(60))), wf::testing::injected_crash);
    CHECK(run(io, inner->find("g"))->owner == "me");
  }
  SECTION("in doubt") {
    auto s = faulty(inner, fault::in_doubt, fault_point::renewal);
    const auto before = run(io, inner->find("g"))->lease_expires;
    CHECK_THROWS_AS(run(io, s->renew("me", {"g"}, std::chrono::hours(1))), wf::testing::injected_crash);
    const auto after = run(io, inner->find("g"));
    CHECK(after->owner == "me");
    CHECK(after->lease_expires > before + std::chrono::minutes(30));
    CHECK(run(io, s->renew("me", {"g"}, std::chrono::hours(1))).empty());  // renewing again is harmless
  }
  SECTION("takeover") {
    auto s = faulty(inner, fault::takeover, fault_point::renewal);
    CHECK(run(io, s->renew("me", {"g"}, std::chrono::seconds(60))) == std::vector<std::string>{"g"});
    CHECK(run(io, inner->find("g"))->owner == "taker");
    CHECK(commit(io, *inner, one("g", 1, 1)) == wf::write_status::fenced);  // the old owner's late write
  }
}

// ---- what a write carries beyond its journal: a release until a wake-up time, creations

namespace {
std::chrono::microseconds micros(wf::wall_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch());
}
}  // namespace

TEST_CASE("a write can release its workflow until a wake-up time: fenced afterwards, no owner, not due before it") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  run(io, store->create(new_state("sleeper", "me")));
  const auto wake = wf::wall_clock::now() + std::chrono::hours(1);
  auto w = one("sleeper", 1, 1);
  w.release_until = wake;
  REQUIRE(commit(io, *store, std::move(w)) == wf::write_status::ok);
  auto st = run(io, store->find("sleeper"));
  REQUIRE(st);
  CHECK(st->owner.empty());
  CHECK(st->epoch == 2);
  CHECK(micros(st->next_attempt_at) == micros(wake));
  CHECK(st->status == wf::workflow_status::running);
  CHECK(run(io, store->journal("sleeper")).size() == 1);  // the write's record, with the release
  CHECK(commit(io, *store, one("sleeper", 1, 2)) == wf::write_status::fenced);
  // Not due before its time: no poller takes it; it can still be claimed by gid.
  auto r = request(10);
  r.owner = "someone";
  CHECK(run(io, store->scheduling()->claim_due(r)).empty());
  CHECK(run(io, store->claim("sleeper", "someone", std::chrono::seconds(30))).status == wf::claim_status::claimed);

  // Due once its time has passed.
  run(io, store->create(new_state("woken", "me")));
  auto past = one("woken", 1, 1);
  past.release_until = wf::wall_clock::now() - std::chrono::seconds(1);
  REQUIRE(commit(io, *store, std::move(past)) == wf::write_status::ok);
  auto due = run(io, store->scheduling()->claim_due(r));
  REQUIRE(due.size() == 1);
  CHECK(due[0].state.gid == "woken");
  CHECK(due[0].journal.size() == 1);

  // A fenced write releases nothing; a write that finishes its workflow is final, not released.
  run(io, store->create(new_state("held", "me")));
  auto stale = one("held", 7, 1);
  stale.release_until = wake;
  CHECK(commit(io, *store, std::move(stale)) == wf::write_status::fenced);
  CHECK(run(io, store->find("held"))->owner == "me");
  CHECK(run(io, store->find("held"))->epoch == 1);
  auto last = one("held", 1, 1);
  last.new_progress = wf::progress{wf::workflow_status::succeeded, "done", 0, "", wf::wall_clock::now()};
  last.release_until = wake;
  REQUIRE(commit(io, *store, std::move(last)) == wf::write_status::ok);
  st = run(io, store->find("held"));
  CHECK(st->status == wf::workflow_status::succeeded);
  CHECK(st->epoch == 1);
  CHECK(st->owner == "me");
}

TEST_CASE("a write can create other workflows with it: created if new, all or nothing with the write") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  run(io, store->create(new_state("parent", "me")));
  auto existing = new_state("existing", "other");
  existing.name = "old";
  run(io, store->create(existing));
  auto child = new_state("child", "");
  child.name = "child_wf";
  child.input = std::string("in\0put", 6);
  child.lease_expires = wf::wall_clock::now();
  auto clash = new_state("existing", "");
  clash.name = "new";

  auto w = one("parent", 1, 1);
  w.creates = {child, clash};
  REQUIRE(commit(io, *store, std::move(w)) == wf::write_status::ok);
  auto c = run(io, store->find("child"));
  REQUIRE(c);
  CHECK(c->name == "child_wf");
  CHECK(c->input == std::string("in\0put", 6));
  CHECK(c->epoch == 1);
  CHECK(c->owner.empty());
  CHECK(c->status == wf::workflow_status::running);
  CHECK(run(io, store->journal("child")).empty());
  CHECK(run(io, store->find("existing"))->name == "old");  // left as it was
  CHECK(run(io, store->find("existing"))->owner == "other");
  // Created with no owner: any runner's poller takes it.
  auto r = request(10, {"child_wf"});
  r.owner = "someone";
  auto due = run(io, store->scheduling()->claim_due(r));
  REQUIRE(due.size() == 1);
  CHECK(due[0].state.gid == "child");

  // A fenced or conflicting write creates nothing.
  auto stale = one("parent", 9, 2);
  stale.creates = {new_state("not-created-1", "")};
  CHECK(commit(io, *store, std::move(stale)) == wf::write_status::fenced);
  auto gap = one("parent", 1, 5);
  gap.creates = {new_state("not-created-2", "")};
  CHECK(commit(io, *store, std::move(gap)) == wf::write_status::conflict);
  CHECK_FALSE(run(io, store->find("not-created-1")));
  CHECK_FALSE(run(io, store->find("not-created-2")));

  // In one commit: each write's creations go with that write only; two
  // writes of one workflow in a commit (applied one by one) each create theirs.
  run(io, store->create(new_state("other-parent", "me")));
  std::vector<wf::write> ws;
  ws.push_back(one("parent", 1, 2));
  ws.back().creates = {new_state("child-2", "")};
  ws.push_back(one("other-parent", 4, 1));  // fenced
  ws.back().creates = {new_state("not-created-3", "")};
  auto statuses = run(io, store->commit(std::move(ws)));
  CHECK(statuses == std::vector<wf::write_status>{wf::write_status::ok, wf::write_status::fenced});
  CHECK(run(io, store->find("child-2")));
  CHECK_FALSE(run(io, store->find("not-created-3")));
  ws.clear();
  ws.push_back(one("parent", 1, 3));
  ws.back().creates = {new_state("child-3", "")};
  ws.push_back(one("parent", 1, 4));
  ws.back().creates = {new_state("child-4", "")};
  statuses = run(io, store->commit(std::move(ws)));
  CHECK(statuses == std::vector<wf::write_status>{wf::write_status::ok, wf::write_status::ok});
  CHECK(run(io, store->find("child-3")));
  CHECK(run(io, store->find("child-4")));
  CHECK(run(io, store->journal("parent")).size() == 4);
}

namespace {
wf::message msg(std::string gid, std::string topic, std::string payload, std::string key) {
  return wf::message{std::move(gid), std::move(topic), std::move(payload), std::move(key)};
}
std::vector<std::string> payloads(const std::vector<wf::inbox_message>& box) {
  std::vector<std::string> out;
  for (const auto& m : box) out.push_back(m.payload);
  return out;
}
}  // namespace

TEST_CASE("send delivers once per key, to unfinished workflows, and to missing ones only when asked") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  REQUIRE(store->messages());
  auto& inboxes = *store->messages();
  run(io, store->create(new_state("rx", "me")));
  const auto before = wf::wall_clock::now() - std::chrono::seconds(1);
  const std::string bytes("p\0one", 5);
  CHECK(run(io, inboxes.send(msg("rx", "t", bytes, "k1"), false)) == wf::send_status::delivered);
  CHECK(run(io, inboxes.send(msg("rx", "t", "again", "k1"), false)) == wf::send_status::duplicate);
  CHECK(run(io, inboxes.send(msg("rx", "t", "two", "k2"), false)) == wf::send_status::delivered);
  CHECK(run(io, inboxes.send(msg("rx", "other", "three", "k3"), false)) == wf::send_status::delivered);
  // Oldest first, by topic, up to the limit.
  auto box = run(io, inboxes.inbox("rx", "t", 10));
  REQUIRE(payloads(box) == std::vector<std::string>{bytes, "two"});
  CHECK(box[0].id < box[1].id);
  CHECK(box[0].topic == "t");
  CHECK(box[0].key == "k1");
  CHECK(box[0].sent_at > before);
  CHECK(box[0].sent_at < wf::wall_clock::now() + std::chrono::seconds(1));
  CHECK(payloads(run(io, inboxes.inbox("rx", "t", 1))) == std::vector<std::string>{bytes});
  CHECK(payloads(run(io, inboxes.inbox("rx", "other", 10))) == std::vector<std::string>{"three"});
  CHECK(run(io, inboxes.inbox("rx", "none", 10)).empty());
  // A workflow held by a runner is left to it: not made due for another.
  auto r = request(10);
  r.owner = "someone";
  CHECK(run(io, store->scheduling()->claim_due(r)).empty());

  // A workflow that does not exist (yet): only if asked, and it finds the message once created.
  CHECK(run(io, inboxes.send(msg("ghost", "t", "early", "k"), false)) == wf::send_status::unknown);
  CHECK(run(io, inboxes.inbox("ghost", "t", 10)).empty());
  CHECK(run(io, inboxes.send(msg("ghost", "t", "early", "k"), true)) == wf::send_status::delivered);
  run(io, store->create(new_state("ghost", "me")));
  CHECK(payloads(run(io, inboxes.inbox("ghost", "t", 10))) == std::vector<std::string>{"early"});

  // A finished workflow's inbox is closed; a repeated send stays a no-op.
  auto done = one("rx", 1, 1);
  done.new_progress = wf::progress{wf::workflow_status::succeeded, "r", 0, "", wf::wall_clock::now()};
  REQUIRE(commit(io, *store, std::move(done)) == wf::write_status::ok);
  CHECK(run(io, inboxes.send(msg("rx", "t", "late", "k4"), false)) == wf::send_status::finished);
  CHECK(run(io, inboxes.send(msg("rx", "t", "late", "k4"), true)) == wf::send_status::finished);
  CHECK(run(io, inboxes.send(msg("rx", "t", bytes, "k1"), false)) == wf::send_status::duplicate);
  CHECK(run(io, inboxes.inbox("rx", "t", 10)).size() == 2);
  // Purged with its workflow.
  CHECK(run(io, store->admin()->purge(wf::wall_clock::now() + std::chrono::seconds(1), 10)) == 1);
  CHECK(run(io, inboxes.inbox("rx", "t", 10)).empty());
  CHECK(run(io, inboxes.inbox("rx", "other", 10)).empty());
  CHECK(run(io, inboxes.inbox("ghost", "t", 10)).size() == 1);  // not finished: kept

  CHECK_THROWS_AS(run(io, inboxes.send(msg("ghost", "t", "x", ""), false)), std::invalid_argument);
}

TEST_CASE("a message wakes a workflow that no runner holds, one released until later included") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  run(io, store->create(new_state("sleeper", "me")));
  auto w = one("sleeper", 1, 1);
  w.release_until = wf::wall_clock::now() + std::chrono::hours(1);
  REQUIRE(commit(io, *store, std::move(w)) == wf::write_status::ok);
  auto r = request(10);
  r.owner = "someone";
  CHECK(run(io, store->scheduling()->claim_due(r)).empty());
  REQUIRE(run(io, store->messages()->send(msg("sleeper", "t", "wake up", "k"), false)) ==
          wf::send_status::delivered);
  auto due = run(io, store->scheduling()->claim_due(r));
  REQUIRE(due.size() == 1);
  CHECK(due[0].state.gid == "sleeper");
}

TEST_CASE("a write consumes messages of its own inbox and sends others, all or nothing with the write") {
  asio::io_context io;
  auto store = make_store(WF_EACH_STORE);
  auto& inboxes = *store->messages();
  run(io, store->create(new_state("rx", "me")));
  run(io, store->create(new_state("dst", "")));
  for (const auto* k : {"m1", "m2", "m3"})
    REQUIRE(run(io, inboxes.send(msg("rx", "t", k, k), false)) == wf::send_status::delivered);
  REQUIRE(run(io, inboxes.send(msg("dst", "t", "theirs", "d1"), false)) == wf::send_status::delivered);
  const auto box = run(io, inboxes.inbox("rx", "t", 10));
  REQUIRE(box.size() == 3);
  const auto theirs = run(io, inboxes.inbox("dst", "t", 10)).at(0).id;

  // A fenced or conflicting write consumes and sends nothing.
  auto stale = one("rx", 9, 1);
  stale.consumes = {box[0].id};
  stale.sends = {msg("dst", "t", "no", "from-rx-0")};
  CHECK(commit(io, *store, std::move(stale)) == wf::write_status::fenced);
  auto gap = one("rx", 1, 4);
  gap.consumes = {box[0].id};
  gap.sends = {msg("dst", "t", "no", "from-rx-0")};
  CHECK(commit(io, *store, std::move(gap)) == wf::write_status::conflict);
  CHECK(run(io, inboxes.inbox("rx", "t", 10)).size() == 3);
  CHECK(payloads(run(io, inboxes.inbox("dst", "t", 10))) == std::vector<std::string>{"theirs"});

  // Applied: its consumption and its sends with it. Another workflow's id is not consumed.
  auto w = one("rx", 1, 1);
  w.consumes = {box[0].id, box[2].id, theirs};
  w.sends = {msg("dst", "t", "hello", "from-rx-1"), msg("dst", "u", "bye", "from-rx-2")};
  REQUIRE(commit(io, *store, std::move(w)) == wf::write_status::ok);
  CHECK(payloads(run(io, inboxes.inbox("rx", "t", 10))) == std::vector<std::string>{"m2"});
  CHECK(payloads(run(io, inboxes.inbox("dst", "t", 10))) == std::vector<std::string>{"theirs", "hello"});
  CHECK(payloads(run(io, inboxes.inbox("dst", "u", 10))) == std::vector<std::string>{"bye"});
  // A send already delivered (a write made again after a fault) is not delivered twice.
  auto again = one("rx", 1, 2);
  again.sends = {msg("dst", "t", "hello", "from-rx-1")};
  again.consumes = {box[0].id};  // consumed already: nothing changes
  REQUIRE(commit(io, *store, std::move(again)) == wf::write_status::ok);
  CHECK(payloads(run(io, inboxes.inbox("dst", "t", 10))) == std::vector<std::string>{"theirs", "hello"});
  CHECK(payloads(run(io, inboxes.inbox("rx", "t", 10))) == std::vector<std::string>{"m2"});
  CHECK(run(io, store->journal("rx")).size() == 2);

  // A message without a key is refused before anything is written.
  auto keyless = one("rx", 1, 3);
  keyless.sends = {msg("dst", "t", "x", "")};
  CHECK_THROWS_AS(commit(io, *store, std::move(keyless)), std::invalid_argument);
  CHECK(run(io, store->journal("rx")).size() == 2);
}
