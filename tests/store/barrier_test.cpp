// The participant's barrier: parsing DTM's conventions (wf/barrier_info.hpp,
// in the core), and the guarantees against PostgreSQL (skipped when no
// database is given: WF_TEST_PG_URL).
#include <wf/barrier.hpp>

#include "support.hpp"

#include <pqxx/pqxx>

#include <barrier>
#include <chrono>
#include <fstream>
#include <future>
#include <set>
#include <sstream>
#include <thread>

using namespace wf_test;

namespace {

wf::barrier_info info(std::string gid, std::string op, std::string branch = "01") {
  return wf::barrier_info{"workflow", std::move(gid), std::move(branch), std::move(op)};
}

std::string invalid_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  FAIL("no std::invalid_argument");
  return {};
}

std::string query_error(std::string_view q) {
  return invalid_message([&] { wf::barrier_from_query(q); });
}

// A participant keeping an account in PostgreSQL, in a schema of its own: the
// action takes 10 from alice, the rollback gives them back.
struct bank {
  std::string schema = fresh_schema();
  std::string table = schema + ".barrier";
  pqxx::connection c{pg_url()};

  bank() {
    wf::create_barrier_table(c, table);
    pqxx::work tx(c);
    tx.exec("CREATE TABLE " + schema + ".accounts (id text PRIMARY KEY, balance integer NOT NULL)");
    tx.exec("INSERT INTO " + schema + ".accounts VALUES ('alice', 100)");
    tx.exec("CREATE TABLE " + schema + ".effects (gid text NOT NULL, op text NOT NULL)");
    tx.commit();
  }

  void transfer(pqxx::work& tx, int delta) {
    tx.exec_params("UPDATE " + schema + ".accounts SET balance = balance + $1 WHERE id = 'alice'", delta);
  }

  // The handler of one request.
  bool handle(const wf::barrier_info& i) { return handle(c, i); }
  bool handle(pqxx::connection& conn, const wf::barrier_info& i) {
    wf::barrier b(i, table);
    return b.call(conn, [&](pqxx::work& tx) { transfer(tx, i.op == "action" || i.op == "try" ? -10 : 10); });
  }

  int balance() {
    pqxx::work tx(c);
    return tx.exec("SELECT balance FROM " + schema + ".accounts WHERE id = 'alice'")[0][0].as<int>();
  }

  // "op/barrier_id/reason" of the rows of `gid`.
  std::vector<std::string> rows(const std::string& gid) {
    pqxx::work tx(c);
    std::vector<std::string> out;
    for (const auto& r : tx.exec_params("SELECT op, barrier_id, reason FROM " + table +
                                            " WHERE gid = $1 ORDER BY op, barrier_id",
                                        gid))
      out.push_back(r[0].as<std::string>() + "/" + r[1].as<std::string>() + "/" + r[2].as<std::string>());
    return out;
  }
};

using rows_t = std::vector<std::string>;

// Columns and indexes of `table` in `schema`, with the schema name left out.
std::vector<std::string> table_shape(pqxx::connection& c, const std::string& schema, const std::string& table) {
  pqxx::work tx(c);
  std::vector<std::string> out;
  for (const auto& r : tx.exec_params(
           "SELECT column_name, data_type, coalesce(character_maximum_length, 0), is_nullable,"
           " coalesce(column_default, ''), is_identity, coalesce(identity_generation, '')"
           " FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
           schema, table)) {
    std::string line;
    for (const auto& f : r) line += f.as<std::string>() + " ";
    out.push_back(line);
  }
  for (const auto& r : tx.exec_params(
           "SELECT replace(indexdef, $1 || '.', '') FROM pg_indexes WHERE schemaname = $1 AND tablename = $2"
           " ORDER BY indexname",
           schema, table))
    out.push_back(r[0].as<std::string>());
  return out;
}

}  // namespace

TEST_CASE("the barrier reads gid, trans_type, branch_id and op from a request target or a query", "[barrier]") {
  const auto expected = wf::barrier_info{"workflow", "g1", "01", "action"};
  CHECK(wf::barrier_from_query("/api/trans-out?gid=g1&trans_type=workflow&branch_id=01&op=action") == expected);
  CHECK(wf::barrier_from_query("/api/trans-out?amount=30&op=action&branch_id=01&trans_type=workflow&gid=g1") ==
        expected);
  CHECK(wf::barrier_from_query("gid=g1&trans_type=workflow&branch_id=01&op=action") == expected);
  CHECK(wf::barrier_from_query("?gid=g1&trans_type=workflow&branch_id=01&op=action") == expected);
  CHECK(wf::barrier_from_query("http://bank:8081/api/trans-out?gid=g1&trans_type=workflow&branch_id=01&op=action") ==
        expected);
  // Given twice with the same value is not ambiguous.
  CHECK(wf::barrier_from_query("gid=g1&gid=g1&trans_type=workflow&branch_id=01&op=action") == expected);
  CHECK(wf::barrier_from_query("gid=g1&trans_type=tcc&branch_id=01&op=cancel").op == "cancel");
}

TEST_CASE("barrier query parameters are percent-decoded, with '+' as a space", "[barrier]") {
  const auto i =
      wf::barrier_from_query("/x?gid=order%2F42%20a+b%26c%3D%C3%A9&trans_type=work%66low&branch_id=0%31&op=rollback");
  CHECK(i.gid == "order/42 a b&c=\xC3\xA9");
  CHECK(i.trans_type == "workflow");
  CHECK(i.branch_id == "01");
  CHECK(i.op == "rollback");
}

TEST_CASE("a missing, empty or invalid barrier parameter is an invalid_argument that names it", "[barrier]") {
  CHECK_THAT(query_error("/x?gid=g1&trans_type=workflow&branch_id=01"),
             Catch::Contains("query parameter op is missing"));
  CHECK_THAT(query_error("/x?trans_type=workflow&branch_id=01&op=action"),
             Catch::Contains("query parameter gid is missing"));
  CHECK_THAT(query_error("/x?gid=&trans_type=workflow&branch_id=01&op=action"),
             Catch::Contains("query parameter gid is empty"));
  CHECK_THAT(query_error("/x?gid&trans_type=workflow&branch_id=01&op=action"),
             Catch::Contains("query parameter gid is empty"));
  CHECK_THAT(query_error("gid=g1&trans_type=workflow&op=action"), Catch::Contains("branch_id is missing"));
  CHECK_THAT(query_error("gid=g1&branch_id=01&op=action"), Catch::Contains("trans_type is missing"));
  CHECK_THAT(query_error("gid=g1&trans_type=workflow&branch_id=01&op=Rollback"),
             Catch::Contains("op 'Rollback' is not one of"));
  CHECK_THAT(query_error("gid=g1&trans_type=msg&branch_id=01&op=msg"), Catch::Contains("op 'msg' is not one of"));
  CHECK_THAT(query_error("gid=g1&gid=g2&trans_type=workflow&branch_id=01&op=action"),
             Catch::Contains("gid is given twice"));
  CHECK_THAT(query_error("gid=g%zz&trans_type=workflow&branch_id=01&op=action"), Catch::Contains("malformed"));
  CHECK_THAT(query_error("/x y?gid=g1"), Catch::Contains("malformed request target"));
  CHECK_THAT(query_error("gid=g%00&trans_type=workflow&branch_id=01&op=action"), Catch::Contains("NUL"));
  CHECK_THAT(query_error("gid=" + std::string(129, 'g') + "&trans_type=workflow&branch_id=01&op=action"),
             Catch::Contains("gid is longer than 128 characters"));
  CHECK_THAT(query_error(""), Catch::Contains("is missing"));
  // Characters, not bytes: 128 two-byte characters fit the column.
  std::string e_acute;
  for (int k = 0; k < 128; ++k) e_acute += "%C3%A9";
  CHECK(wf::barrier_from_query("gid=" + e_acute + "&trans_type=workflow&branch_id=01&op=action").gid.size() == 256);
  // Bytes PostgreSQL would refuse in a text column (found by fuzz/barrier_fuzz.cpp).
  CHECK_THAT(query_error("gid=g%FF&trans_type=workflow&branch_id=01&op=action"),
             Catch::Contains("gid is not valid UTF-8"));
  CHECK_THAT(query_error("gid=g1&trans_type=workflow&branch_id=%C3&op=action"),
             Catch::Contains("branch_id is not valid UTF-8"));
  std::multimap<std::string, std::string> bad = {
      {"dtm-gid", "g\xC0\xAF"}, {"dtm-trans_type", "workflow"}, {"dtm-branch_id", "01"}, {"dtm-op", "action"}};
  CHECK_THROWS_WITH(wf::barrier_from_metadata(bad), Catch::Contains("metadata dtm-gid is not valid UTF-8"));
}

TEST_CASE("the barrier reads only the query it is given, not the bytes after it", "[barrier]") {
  // A view into a larger buffer, not NUL-terminated where it ends: Boost.URL
  // once read it to the buffer's end (found by fuzz/barrier_fuzz.cpp).
  const std::string buffer = "gid=g1&trans_type=workflow&branch_id=01&op=action&gid=g2 and more";
  const std::string_view query(buffer.data(), buffer.find("&gid=g2"));
  CHECK(wf::barrier_from_query(query).gid == "g1");
  const std::string target = "/api/x?gid=g1&trans_type=workflow&branch_id=01&op=action#tail";
  CHECK(wf::barrier_from_query(std::string_view(target.data(), target.find('#'))).op == "action");
}

TEST_CASE("the barrier reads dtm-* gRPC metadata", "[barrier]") {
  std::multimap<std::string, std::string> m = {{"dtm-gid", "g 1%20"},
                                               {"dtm-trans_type", "workflow"},
                                               {"dtm-branch_id", "02"},
                                               {"dtm-op", "commit"},
                                               {"user-agent", "grpc-c++"}};
  // Metadata values are not percent-decoded.
  CHECK(wf::barrier_from_metadata(m) == wf::barrier_info{"workflow", "g 1%20", "02", "commit"});
  m.emplace("dtm-op", "rollback");
  CHECK_THAT(invalid_message([&] { wf::barrier_from_metadata(m); }),
             Catch::Contains("metadata dtm-op is given twice"));
  m.erase("dtm-op");
  CHECK_THAT(invalid_message([&] { wf::barrier_from_metadata(m); }), Catch::Contains("metadata dtm-op is missing"));
}

TEST_CASE("a barrier refuses incomplete info and bad table names before any SQL", "[barrier]") {
  CHECK_THAT(invalid_message([] { wf::barrier(info("", "action")); }), Catch::Contains("barrier_info.gid is empty"));
  CHECK_THAT(invalid_message([] { wf::barrier(info("g", "undo")); }), Catch::Contains("'undo' is not one of"));
  for (const char* bad : {"Barrier", "s.t.u", "9s.barrier", "s.", ".barrier", "s.barrier; DROP TABLE x", "s-1.barrier",
                          "\"s\".barrier", ""})
    CHECK_THAT(invalid_message([&] { wf::barrier(info("g", "action"), bad); }),
               Catch::Contains("invalid table name"));
  CHECK(wf::barrier(info("g", "action"), "barrier").table() == "barrier");
  CHECK(wf::barrier(info("g", "action")).table() == "dtm_barrier.barrier");
  CHECK(wf::barrier(info("g", "action")).info() == info("g", "action"));
}

TEST_CASE("valid_identifier is the rule of the barrier's table names, for a participant's own tables", "[barrier]") {
  for (const char* good : {"bank", "_b", "bank_2", "select"}) {
    CHECK(wf::valid_identifier(good));
    CHECK(wf::barrier(info("g", "action"), std::string(good) + ".barrier").table() == std::string(good) + ".barrier");
  }
  for (const char* bad : {"", "Bank", "9bank", "a-b", "a.b", "\"a\"", "caf\xc3\xa9"}) CHECK_FALSE(wf::valid_identifier(bad));
  CHECK(wf::valid_identifier(std::string(63, 'a')));
  CHECK_FALSE(wf::valid_identifier(std::string(64, 'a')));
}

TEST_CASE("create_barrier_table is idempotent and makes the table of sql/barrier.sql", "[barrier]") {
  WF_REQUIRE_DATABASE();
  pqxx::connection c(pg_url());
  const auto mine = fresh_schema();
  wf::create_barrier_table(c, mine + ".barrier");
  wf::create_barrier_table(c, mine + ".barrier");
  CHECK_THROWS_AS(wf::create_barrier_table(c, mine + ".barrier; DROP TABLE x"), std::invalid_argument);

  std::ifstream file(WF_SOURCE_DIR "/sql/barrier.sql");
  REQUIRE(file);
  std::stringstream text;
  text << file.rdbuf();
  std::string sql = text.str();
  const auto from_file = fresh_schema();
  for (auto pos = sql.find("dtm_barrier"); pos != std::string::npos; pos = sql.find("dtm_barrier", pos))
    sql.replace(pos, 11, from_file);
  for (int k = 0; k < 2; ++k) {
    pqxx::work tx(c);
    tx.exec(sql);
    tx.commit();
  }

  const auto shape = table_shape(c, mine, "barrier");
  CHECK(shape.size() == 8 + 2);  // columns, primary key, unique key
  CHECK(shape == table_shape(c, from_file, "barrier"));
}

TEST_CASE("a duplicate request behind the barrier succeeds and takes effect once", "[barrier]") {
  WF_REQUIRE_DATABASE();
  bank b;
  CHECK(b.handle(info("g1", "action")));
  CHECK_FALSE(b.handle(info("g1", "action")));
  CHECK(b.balance() == 90);
  CHECK(b.handle(info("g1", "rollback")));
  CHECK_FALSE(b.handle(info("g1", "rollback")));
  CHECK(b.balance() == 100);
  CHECK(b.rows("g1") == rows_t{"action/01/action", "rollback/01/rollback"});
}

TEST_CASE("a rollback whose action never ran does nothing, nor does the action arriving after it", "[barrier]") {
  WF_REQUIRE_DATABASE();
  bank b;
  CHECK_FALSE(b.handle(info("g1", "rollback")));  // null compensation
  CHECK(b.balance() == 100);
  CHECK(b.rows("g1") == rows_t{"action/01/rollback", "rollback/01/rollback"});
  CHECK_FALSE(b.handle(info("g1", "action")));  // hanging action
  CHECK_FALSE(b.handle(info("g1", "rollback")));  // and a repeated rollback
  CHECK(b.balance() == 100);
  CHECK(b.rows("g1") == rows_t{"action/01/rollback", "rollback/01/rollback"});
  // Another branch of the same workflow is not affected.
  CHECK(b.handle(info("g1", "action", "02")));
  CHECK(b.balance() == 90);
}

TEST_CASE("cancel is to try what rollback is to action; commit, confirm and finish just run once", "[barrier]") {
  WF_REQUIRE_DATABASE();
  bank b;
  CHECK_FALSE(b.handle(info("g1", "cancel")));
  CHECK_FALSE(b.handle(info("g1", "try")));
  CHECK(b.balance() == 100);
  CHECK(b.handle(info("g2", "try")));
  CHECK(b.handle(info("g2", "cancel")));
  CHECK(b.balance() == 100);
  CHECK(b.handle(info("g3", "commit")));
  CHECK_FALSE(b.handle(info("g3", "commit")));
  CHECK(b.handle(info("g3", "confirm")));
  CHECK(b.handle(info("g3", "finish")));
  CHECK_FALSE(b.handle(info("g3", "finish")));
  CHECK(b.balance() == 130);
  CHECK(b.rows("g2") == rows_t{"cancel/01/cancel", "try/01/try"});
}

TEST_CASE("an action then its rollback both take effect", "[barrier]") {
  WF_REQUIRE_DATABASE();
  bank b;
  CHECK(b.handle(info("g1", "action")));
  CHECK(b.balance() == 90);
  CHECK(b.handle(info("g1", "rollback")));
  CHECK(b.balance() == 100);
}

TEST_CASE("when the business code throws, nothing is recorded and the retry runs it", "[barrier]") {
  WF_REQUIRE_DATABASE();
  bank b;
  wf::barrier first(info("g1", "action"), b.table);
  CHECK_THROWS_WITH(first.call(b.c,
                               [&](pqxx::work& tx) {
                                 b.transfer(tx, -10);
                                 throw std::runtime_error("insufficient funds");
                               }),
                    "insufficient funds");
  CHECK(b.balance() == 100);
  CHECK(b.rows("g1").empty());
  CHECK(b.handle(info("g1", "action")));  // the retry: a new request
  CHECK(b.balance() == 90);
  // A database error in the business code rolls back too.
  wf::barrier bad(info("g2", "action"), b.table);
  CHECK_THROWS_AS(bad.call(b.c, [&](pqxx::work& tx) { tx.exec("SELECT * FROM " + b.schema + ".nothing_here"); }),
                  pqxx::sql_error);
  CHECK(b.rows("g2").empty());
}

TEST_CASE("the guarded steps of one handler get barrier ids 01, 02", "[barrier]") {
  WF_REQUIRE_DATABASE();
  bank b;
  auto two_steps = [&](const wf::barrier_info& i) {
    wf::barrier guard(i, b.table);
    std::vector<bool> ran;
    ran.push_back(guard.call(b.c, [&](pqxx::work& tx) { b.transfer(tx, i.op == "action" ? -1 : 1); }));
    ran.push_back(guard.call(b.c, [&](pqxx::work& tx) { b.transfer(tx, i.op == "action" ? -10 : 10); }));
    return ran;
  };
  CHECK(two_steps(info("g1", "action")) == std::vector<bool>{true, true});
  CHECK(b.balance() == 89);
  CHECK(b.rows("g1") == rows_t{"action/01/action", "action/02/action"});
  CHECK(two_steps(info("g1", "action")) == std::vector<bool>{false, false});
  CHECK(two_steps(info("g1", "rollback")) == std::vector<bool>{true, true});
  CHECK(b.balance() == 100);
  // A handler that got through its first step only: the rollback undoes only that one.
  wf::barrier half(info("g2", "action"), b.table);
  CHECK(half.call(b.c, [&](pqxx::work& tx) { b.transfer(tx, -1); }));
  CHECK(two_steps(info("g2", "rollback")) == std::vector<bool>{true, false});
  CHECK(b.balance() == 100);
}

TEST_CASE("the barrier works on a table created by DTM's own script", "[barrier]") {
  WF_REQUIRE_DATABASE();
  bank b;
  const std::string dtm_table = b.schema + ".dtm_made";
  {
    pqxx::work tx(b.c);
    // The shape of DTM's PostgreSQL barrier table: nullable columns, a named unique constraint.
    tx.exec("CREATE SEQUENCE " + b.schema + ".dtm_seq");
    tx.exec("CREATE TABLE " + dtm_table + " (id bigint NOT NULL DEFAULT nextval('" + b.schema +
            ".dtm_seq'), trans_type varchar(45) DEFAULT '', gid varchar(128) DEFAULT '',"
            " branch_id varchar(128) DEFAULT '', op varchar(45) DEFAULT '', barrier_id varchar(45) DEFAULT '',"
            " reason varchar(45) DEFAULT '', create_time timestamp(0) with time zone DEFAULT NULL,"
            " update_time timestamp(0) with time zone DEFAULT NULL, PRIMARY KEY (id),"
            " CONSTRAINT uniq_barrier UNIQUE (gid, branch_id, op, barrier_id))");
    tx.commit();
  }
  b.table = dtm_table;
  CHECK_FALSE(b.handle(info("g1", "rollback")));
  CHECK_FALSE(b.handle(info("g1", "action")));
  CHECK(b.handle(info("g2", "action")));
  CHECK_FALSE(b.handle(info("g2", "action")));
  CHECK(b.balance() == 90);
}

TEST_CASE("a rollback arriving while its action's transaction is open waits for it, then compensates",
          "[barrier]") {
  WF_REQUIRE_DATABASE();
  bank b;
  pqxx::connection action_conn(pg_url()), rollback_conn(pg_url());
  std::promise<void> in_business, release;
  auto released = release.get_future().share();
  auto action = std::async(std::launch::async, [&] {
    wf::barrier guard(info("g1", "action"), b.table);
    return guard.call(action_conn, [&](pqxx::work& tx) {
      b.transfer(tx, -10);
      in_business.set_value();
      released.wait();
    });
  });
  in_business.get_future().wait();
  auto rollback = std::async(std::launch::async, [&] { return b.handle(rollback_conn, info("g1", "rollback")); });
  // Until the rollback's insert is seen waiting for the action's row lock.
  bool waited = false;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!waited && std::chrono::steady_clock::now() < give_up) {
    pqxx::nontransaction q(b.c);
    waited = q.exec_params("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                           " AND query LIKE 'INSERT INTO \"' || $1 || '\".%'",
                           b.schema)[0][0]
                 .as<int>() == 1;
    if (!waited) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  CHECK(waited);
  CHECK(rollback.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);
  release.set_value();
  CHECK(action.get());
  CHECK(rollback.get());
  CHECK(b.balance() == 100);
}

TEST_CASE("a rollback and its action arriving at once: both take effect or neither, each at most once",
          "[barrier]") {
  WF_REQUIRE_DATABASE();
  bank b;
  constexpr int n = 200;
  std::vector<std::string> gids;
  for (int i = 0; i < n; ++i) gids.push_back(numbered("g", i));
  std::vector<char> action_ran(n), rollback_ran(n);
  std::vector<std::atomic<bool>> started(n);
  std::barrier sync(2);
  std::exception_ptr errors[2];

  // Each op in a thread of its own, with a connection of its own. The action
  // starts first for even gids, the rollback for odd ones; the other follows
  // as soon as the first has started.
  auto participant = [&](int side, std::string op, std::vector<char>& ran) {
    try {
      pqxx::connection c(pg_url());
      for (int i = 0; i < n; ++i) {
        sync.arrive_and_wait();
        const bool goes_first = (i % 2 == 0) == (side == 0);
        if (goes_first)
          started[i] = true;
        else
          while (!started[i]) std::this_thread::yield();
        wf::barrier guard(info(gids[i], op), b.table);
        ran[i] = guard.call(c, [&](pqxx::work& tx) {
          tx.exec_params("INSERT INTO " + b.schema + ".effects VALUES ($1, $2)", gids[i], op);
        });
      }
    } catch (...) {
      errors[side] = std::current_exception();
      // Keep the other side from waiting for ever.
      for (int i = 0; i < n; ++i) started[i] = true;
      sync.arrive_and_drop();
    }
  };
  std::thread action_thread(participant, 0, "action", std::ref(action_ran));
  std::thread rollback_thread(participant, 1, "rollback", std::ref(rollback_ran));
  action_thread.join();
  rollback_thread.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);

  std::map<std::string, std::multiset<std::string>> effects;
  {
    pqxx::work tx(b.c);
    for (const auto& r : tx.exec("SELECT gid, op FROM " + b.schema + ".effects"))
      effects[r[0].as<std::string>()].insert(r[1].as<std::string>());
  }
  for (int i = 0; i < n; ++i) {
    const auto& e = effects[gids[i]];
    INFO("gid " << gids[i] << ": action " << e.count("action") << ", rollback " << e.count("rollback"));
    CHECK(e.count("action") <= 1);
    CHECK(e.count("rollback") <= 1);
    CHECK(e.count("action") == e.count("rollback"));
    CHECK(static_cast<bool>(action_ran[i]) == (e.count("action") == 1));
    CHECK(static_cast<bool>(rollback_ran[i]) == (e.count("rollback") == 1));
  }
  // Whatever happened, both ops of every gid are recorded.
  pqxx::work tx(b.c);
  CHECK(tx.exec("SELECT count(*) FROM " + b.table + " WHERE barrier_id = '01'")[0][0].as<int>() == 2 * n);
}

TEST_CASE("barrier_info_of puts a branch call's gid, branch id and op in their places") {
  const wf::branch_context call{"g-1", "03", "rollback", "TransIn"};
  CHECK(wf::barrier_info_of(call) == wf::barrier_info{"workflow", "g-1", "03", "rollback"});
  CHECK(wf::barrier_info_of(call, "saga").trans_type == "saga");
  const wf::branch_context bad{"g-1", "03", "msg", "X"};
  CHECK_THROWS_AS(wf::barrier_info_of(bad), std::invalid_argument);
}

TEST_CASE("a local step guarded by a barrier pool applies once across a crash, from a coroutine") {
  WF_REQUIRE_DATABASE();
  bank b;
  const auto kind = WF_EACH_STORE;
  auto data = make_store(kind);
  auto pool = std::make_shared<wf::barrier_pool>(wf::barrier_pool::options{pg_url(), 2, b.table});
  const auto schema = b.schema;
  auto start_for = [pool, schema](wf::runtime& rt) {
    rt.register_workflow("local", [pool, schema](wf::workflow& w, std::string) -> asio::awaitable<void> {
      auto debit = [pool, schema](const wf::branch_context& c) -> asio::awaitable<bool> {
        auto business = [schema](pqxx::work& tx) {
          tx.exec("UPDATE " + schema + ".accounts SET balance = balance - 10 WHERE id = 'alice'");
        };
        co_return co_await pool->call(wf::barrier_info_of(c), business);
      };
      co_await w.step("Debit", debit);
    });
  };
  // Write 2 is the step's outcome: the first process dies after the debit
  // committed in the bank, before wf journaled it.
  auto first = [&start_for](wf::runtime& rt) {
    start_for(rt);
    asio::co_spawn(rt.get_executor(), rt.execute("local", "local-1", ""), asio::detached);
  };
  REQUIRE(wf::testing::run_until_crash(data, 2, {.executor_id = "svc"}, first));
  asio::io_context io;
  wf::runtime rt(io.get_executor(), data, {.executor_id = "svc"});
  start_for(rt);
  run(io, rt.recover());
  CHECK(run(io, rt.execute("local", "local-1", "")).succeeded());
  pqxx::nontransaction tx(b.c);
  CHECK(tx.exec("SELECT balance FROM " + schema + ".accounts WHERE id = 'alice'")[0][0].as<int>() == 90);
  // The step ran twice: the second time the barrier absorbed it.
  CHECK(tx.exec("SELECT count(*) FROM " + b.table + " WHERE gid = 'local-1'")[0][0].as<int>() == 1);
}

// docs/concepts.md, "Local step": a local transaction with a compensation is
// a branch whose action and on_rollback both go through a barrier_pool. The
// code below is that example's, in a workflow that then fails; the process
// dies at each journal write in turn, and a restarted one finishes the job.
TEST_CASE("a local branch with a compensation through a barrier pool rolls back once across a crash at every write") {
  WF_REQUIRE_DATABASE();
  const auto kind = WF_EACH_STORE;
  for (std::size_t crash_at = 1;; ++crash_at) {
    INFO("crash at write " << crash_at);
    bank b;
    const auto schema = b.schema;
    {
      pqxx::work tx(b.c);
      tx.exec("CREATE TABLE " + schema + ".stock (item text PRIMARY KEY, reserved integer NOT NULL)");
      tx.exec("INSERT INTO " + schema + ".stock VALUES ('lamp', 0)");
      tx.commit();
    }
    auto pool = std::make_shared<wf::barrier_pool>(wf::barrier_pool::options{pg_url(), 2, b.table});
    auto start_for = [pool, schema](wf::runtime& rt) {
      rt.register_workflow("order", [pool, schema](wf::workflow& w, std::string item) -> asio::awaitable<void> {
        auto reserve = [pool, schema, item](const wf::branch_context& c) {
          return pool->call(wf::barrier_info_of(c), [schema, item](pqxx::work& tx) {
            tx.exec_params("UPDATE " + schema + ".stock SET reserved = reserved + 1 WHERE item = $1", item);
            tx.exec_params("INSERT INTO " + schema + ".effects VALUES ($1, 'reserve')", std::string("order-1"));
          });
        };
        auto release = [pool, schema, item](const wf::branch_context& c) -> asio::awaitable<void> {
          auto undo = [schema, item](pqxx::work& tx) {
            tx.exec_params("UPDATE " + schema + ".stock SET reserved = reserved - 1 WHERE item = $1", item);
            tx.exec_params("INSERT INTO " + schema + ".effects VALUES ($1, 'release')", std::string("order-1"));
          };
          co_await pool->call(wf::barrier_info_of(c), undo);  // named: see docs/concepts.md, "GCC 12"
        };
        co_await w.new_branch("ReserveStock").on_rollback(release).run(reserve);
        auto charge = [](const wf::branch_context&) -> asio::awaitable<void> { throw wf::failure("card declined"); };
        co_await w.new_branch("Charge").run(charge);
      });
    };
    auto data = make_store(kind);
    auto first = [&start_for](wf::runtime& rt) {
      start_for(rt);
      asio::co_spawn(rt.get_executor(), rt.execute("order", "order-1", "lamp"), asio::detached);
    };
    const bool crashed = wf::testing::run_until_crash(data, crash_at, {.executor_id = "svc"}, first);
    asio::io_context io;
    wf::runtime rt(io.get_executor(), data, {.executor_id = "svc"});
    start_for(rt);
    run(io, rt.recover());
    const auto out = run(io, rt.execute("order", "order-1", "lamp"));
    CHECK(out.status == wf::workflow_status::failed);
    CHECK(out.reason == "card declined");
    {
      pqxx::work tx(b.c);
      CHECK(tx.exec("SELECT reserved FROM " + schema + ".stock")[0][0].as<int>() == 0);
      // The reservation and its release each took effect once, whatever ran twice.
      CHECK(tx.exec("SELECT count(*) FROM " + schema + ".effects WHERE op = 'reserve'")[0][0].as<int>() == 1);
      CHECK(tx.exec("SELECT count(*) FROM " + schema + ".effects WHERE op = 'release'")[0][0].as<int>() == 1);
    }
    CHECK(b.rows("order-1") == std::vector<std::string>{"action/01/action", "rollback/01/rollback"});
    if (!crashed) break;  // the run finished before write `crash_at`: every write has been a crash point
  }
}
