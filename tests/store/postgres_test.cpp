// What only the PostgreSQL store has: schema migrations, start-up errors,
// group commit. Skipped when no database is given (WF_TEST_PG_URL).
#include "store/pg_support.hpp"

#include <boost/asio/steady_timer.hpp>
#include <pqxx/pqxx>

using namespace wf_test;

TEST_CASE("postgres: a fresh database gets the schema, and migrating again changes nothing") {
  WF_REQUIRE_DATABASE();
  auto o = pg_options();
  CHECK(wf::migrate_postgres_schema(o) == 0);
  CHECK(schema_version(o.schema) == wf::postgres_schema_version);
  CHECK(wf::migrate_postgres_schema(o) == wf::postgres_schema_version);
  CHECK(schema_version(o.schema) == wf::postgres_schema_version);
  CHECK(wf::postgres_store::open(o) != nullptr);
}

TEST_CASE("postgres: a schema newer than the library is refused and left untouched") {
  WF_REQUIRE_DATABASE();
  auto o = pg_options();
  wf::migrate_postgres_schema(o);
  {
    pqxx::connection c(pg_url());
    pqxx::work tx(c);
    tx.exec("INSERT INTO " + o.schema + ".schema_version (version) VALUES (99)");
    tx.exec("ALTER TABLE " + o.schema + ".workflows ADD COLUMN from_the_future integer");
    tx.commit();
  }
  CHECK_THROWS_AS(wf::postgres_store::open(o), wf::schema_too_new_error);
  try {
    wf::postgres_store::open(o);
  } catch (const wf::schema_too_new_error& e) {
    CHECK_THAT(e.what(), Catch::Contains("version 99") && Catch::Contains("upgrade wf"));
  }
  CHECK(schema_version(o.schema) == 99);
}

TEST_CASE("postgres: an invalid schema name is refused before any SQL") {
  auto o = pg_options("Robert'); DROP TABLE students;--");
  CHECK_THROWS_AS(wf::postgres_store::open(o), wf::postgres_error);
  o.schema = "9lives";
  CHECK_THROWS_AS(wf::postgres_store::open(o), wf::postgres_error);
}

TEST_CASE("postgres: an unreachable database is a clear error that does not show the password") {
  wf::postgres_options o;
  o.connection = "postgresql://wf:s3cret-pw@127.0.0.1:1/wf?connect_timeout=2";
  try {
    wf::postgres_store::open(o);
    FAIL("opened");
  } catch (const wf::postgres_error& e) {
    const std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("cannot connect to PostgreSQL"));
    CHECK_THAT(what, !Catch::Contains("s3cret-pw"));
  }
}

TEST_CASE("postgres: a wrong password is a clear error that does not show the password") {
  WF_REQUIRE_DATABASE();
  // scripts/common.sh makes the test cluster ask this role (and only it) for a password.
  const std::string role = "wf_password_check";
  {
    pqxx::connection c(wf_test::pg_url());
    pqxx::work tx(c);
    tx.exec("DO $$ BEGIN CREATE ROLE " + role + " LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$");
    tx.exec("ALTER ROLE " + role + " PASSWORD 'right-pw-7'");
    tx.exec("DO $$ BEGIN EXECUTE format('GRANT CREATE ON DATABASE %I TO " + role +
            "', current_database()); END $$");
    tx.commit();
  }
  const std::string sep = wf_test::pg_url().find('?') == std::string::npos ? "?" : "&";
  auto o = pg_options();
  o.connection = wf_test::pg_url() + sep + "user=" + role + "&password=wrong-pw-3";
  std::string what;
  try {
    wf::postgres_store::open(o);
  } catch (const wf::postgres_error& e) {
    what = e.what();
  }
  if (what.empty()) {
    WARN("this PostgreSQL does not ask " + role + " for a password (not the cluster scripts/test starts): skipped");
    return;
  }
  CHECK_THAT(what, Catch::Contains("cannot connect to PostgreSQL") && Catch::Contains("password authentication failed"));
  CHECK_THAT(what, !Catch::Contains("wrong-pw-3"));
  // The same role with the right password opens the store.
  o.connection = wf_test::pg_url() + sep + "user=" + role + "&password=right-pw-7";
  CHECK_NOTHROW(wf::postgres_store::open(o));
}

TEST_CASE("postgres: in retrying mode, open keeps trying until its time is up") {
  wf::postgres_options o;
  o.connection = "postgresql://wf@127.0.0.1:1/wf?connect_timeout=1";
  o.wait_for_database = std::chrono::milliseconds(600);
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_AS(wf::postgres_store::open(o), wf::postgres_error);
  CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(600));
}

TEST_CASE("postgres: concurrent journal writes are committed in groups") {
  WF_REQUIRE_DATABASE();
  auto o = pg_options();
  // Wait (up to a generous bound) for the whole group, so that grouping does not depend on timing.
  o.max_batch = 64;
  o.batch_wait = std::chrono::seconds(5);
  auto store = wf::postgres_store::open(o);
  asio::io_context io;
  std::vector<wf::write_status> statuses;
  for (int i = 0; i < 64; ++i) {
    wf::workflow_state s;
    s.gid = "g" + std::to_string(i);
    s.name = "w";
    s.owner = "me";
    auto create = [&, s]() -> asio::awaitable<void> {
      auto c = co_await store->create(s);
      CHECK(c.created);
    };
    asio::co_spawn(io, create, asio::detached);
  }
  io.run();
  CHECK(store->stats().writes == 64);
  CHECK(store->stats().transactions == 1);
  for (int i = 0; i < 64; ++i) {
    wf::write w;
    w.gid = "g" + std::to_string(i);
    w.epoch = 1;
    w.records.push_back(wf::journal_record{1, wf::record_kind::branch, "A", 1, false, "r"});
    auto commit = [&, w]() -> asio::awaitable<void> {
      std::vector<wf::write> ws{w};
      auto st = co_await store->commit(std::move(ws));
      statuses.push_back(st.at(0));
    };
    asio::co_spawn(io, commit, asio::detached);
  }
  io.restart();
  io.run();
  CHECK(statuses == std::vector<wf::write_status>(64, wf::write_status::ok));
  CHECK(store->stats().writes == 128);
  CHECK(store->stats().transactions == 2);
}

TEST_CASE("postgres: 64 concurrent workflows all succeed, and the group writer counts every write") {
  WF_REQUIRE_DATABASE();
  fixture f{"postgres"};
  register_chain(f.rt, f.participant);
  const auto input = chain_input({"A", "B"});
  int succeeded = 0;
  for (int i = 0; i < 64; ++i)
    asio::co_spawn(f.io, f.rt.execute("chain", numbered("g", i), input),
                   [&](std::exception_ptr e, wf::outcome o) {
                     if (!e && o.succeeded()) ++succeeded;
                   });
  f.io.run();
  CHECK(succeeded == 64);
  // 64 creations + 64 x (2 branches + 1 decision) writes, however they were grouped.
  CHECK(std::static_pointer_cast<wf::postgres_store>(f.store)->stats().writes == 64 * 4);
}

TEST_CASE("postgres: an enqueued workflow is run by a polling runner, woken by a notification") {
  WF_REQUIRE_DATABASE();
  asio::io_context io;
  auto store = make_store("postgres");
  wf::testing::effect_log log;
  auto p = std::make_shared<fake_participant>(log);
  wf::runtime submitter(io.get_executor(), store, {.executor_id = "submitter"});
  wf::runtime worker(io.get_executor(), store, {.executor_id = "worker", .poll_interval = std::chrono::hours(1)});
  register_chain(submitter, p);
  register_chain(worker, p);
  worker.start();
  const auto input = chain_input({"A"});
  std::optional<wf::outcome> out;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    co_await submitter.enqueue("chain", "q1", input);
    // The worker's poll interval is an hour: only the notification can wake it.
    for (;;) {
      auto st = co_await store->find("q1");
      if (st && st->finished()) break;
      asio::steady_timer t(io, std::chrono::milliseconds(5));
      co_await t.async_wait(asio::use_awaitable);
    }
    worker.stop();
    out = co_await submitter.execute("chain", "q1", input);
  }, asio::detached);
  io.run_for(std::chrono::seconds(20));
  REQUIRE(out);
  CHECK(out->succeeded());
  CHECK(run(io, store->find("q1"))->owner == "worker");
}

TEST_CASE("postgres: the commands a write carries for operations in flight are one row, read back as they were") {
  WF_REQUIRE_DATABASE();
  auto o = pg_options();
  auto store = wf::postgres_store::open(o);
  asio::io_context io;
  auto pending = [](std::uint32_t seq, wf::record_kind kind, std::string name, std::uint32_t branch,
                    std::uint32_t op) {
    return wf::journal_record{seq, kind, std::move(name), branch, false, "", op, {}, true};
  };
  auto records = [&](std::uint32_t first) {
    // A completion, three commands (one with a name of bytes), a complete record, one command alone.
    std::vector<wf::journal_record> r;
    r.push_back(wf::journal_record{first, wf::record_kind::completion, "A", 1, false, "ra", 1});
    r.push_back(pending(first + 1, wf::record_kind::branch, "B", 2, 2));
    r.push_back(pending(first + 2, wf::record_kind::step, std::string("s\0t\xff", 4), 3, 3));
    r.push_back(pending(first + 3, wf::record_kind::branch, "", 4, 4));
    r.push_back(wf::journal_record{first + 4, wf::record_kind::value, "uuid", 0, false, "x", 5});
    r.push_back(pending(first + 5, wf::record_kind::branch, "F", 6, 6));
    return r;
  };
  auto row_count = [&](const std::string& gid) {
    pqxx::connection c(pg_url());
    pqxx::work tx(c);
    return tx.exec_params("SELECT count(*) FROM " + o.schema + ".journal WHERE gid = $1", gid)[0][0].as<int>();
  };
  for (const auto* gid : {"batched", "one-by-one"}) {
    wf::workflow_state s;
    s.gid = gid;
    s.name = "w";
    s.owner = "me";
    run(io, store->create(s));
  }
  // One write: the group statement.
  std::vector<wf::write> ws(1);
  ws[0].gid = "batched";
  ws[0].epoch = 1;
  ws[0].records = records(1);
  const auto expected = ws[0].records;
  REQUIRE(run(io, store->commit(ws)) == std::vector<wf::write_status>{wf::write_status::ok});
  CHECK(run(io, store->journal("batched")) == expected);
  CHECK(row_count("batched") == 4);  // the completion, the three commands, the value, the last command
  // Two writes of one workflow in one commit: applied one by one.
  ws.assign(2, wf::write{});
  for (auto& w : ws) {
    w.gid = "one-by-one";
    w.epoch = 1;
  }
  ws[0].records = records(1);
  ws[1].records = records(7);
  auto both = ws[0].records;
  both.insert(both.end(), ws[1].records.begin(), ws[1].records.end());
  REQUIRE(run(io, store->commit(ws)) == std::vector<wf::write_status>(2, wf::write_status::ok));
  CHECK(run(io, store->journal("one-by-one")) == both);
  CHECK(row_count("one-by-one") == 8);
  // A claim returns the journal unpacked too.
  auto claimed = run(io, store->claim("one-by-one", "me", std::chrono::seconds(30)));
  CHECK(claimed.journal == both);
}
