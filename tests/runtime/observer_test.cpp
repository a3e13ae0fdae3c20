// What a runtime tells its observer, and the logger and metrics built on it.
#include "support.hpp"

#include <wf/http.hpp>
#include <wf/log.hpp>
#include <wf/metrics.hpp>

#include <sstream>

using namespace wf_test;

namespace {

// Writes each event as one line of text.
struct recorder final : wf::observer {
  std::vector<std::string> events;
  void add(std::string e) { events.push_back(std::move(e)); }
  static std::string who(const wf::workflow_ref& w) { return std::string(w.gid) + " "; }

  void workflow_created(const wf::workflow_ref& w) override { add(who(w) + "created"); }
  void workflow_resumed(const wf::workflow_ref& w, std::string_view previous, bool takeover) override {
    add(who(w) + "resumed from '" + std::string(previous) + "'" + (takeover ? " takeover" : ""));
  }
  void workflow_finished(const wf::workflow_ref& w, wf::workflow_status s, std::string_view detail) override {
    add(who(w) + "finished " + std::string(wf::to_string(s)) + " " + std::string(detail));
  }
  void attempt_started(const wf::workflow_ref& w, std::uint32_t n, bool closing) override {
    add(who(w) + "attempt " + std::to_string(n) + (closing ? " closing" : ""));
  }
  void attempt_ended(const wf::workflow_ref& w, std::uint32_t n, wf::attempt_end how, std::string_view error,
                     std::optional<wf::wall_clock::time_point> next) override {
    add(who(w) + "attempt " + std::to_string(n) + " " + std::string(wf::to_string(how)) +
        (error.empty() ? "" : " '" + std::string(error) + "'") + (next ? " next" : ""));
  }
  void call_started(const wf::workflow_ref& w, const wf::branch_context& c) override {
    add(who(w) + "call " + std::string(c.branch_id) + " " + std::string(c.name) + "/" + std::string(c.op));
  }
  void call_ended(const wf::workflow_ref& w, const wf::branch_context& c, wf::call_end how, std::chrono::nanoseconds,
                  std::string_view) override {
    add(who(w) + "ended " + std::string(c.name) + "/" + std::string(c.op) + " " + std::string(wf::to_string(how)));
  }
  void journal_written(const wf::workflow_ref& w, std::size_t records, std::chrono::nanoseconds) override {
    add(who(w) + "written " + std::to_string(records));
  }
  void lease_lost(const wf::workflow_ref& w) override { add(who(w) + "lease lost"); }
};

struct observed {
  explicit observed(std::shared_ptr<wf::observer> o, const std::string& kind = "memory")
      : store(make_store(kind)), rt(io.get_executor(), store, options(std::move(o))) {}
  static wf::runtime_options options(std::shared_ptr<wf::observer> o) {
    wf::runtime_options opts;
    opts.executor_id = "observed";
    opts.observer = std::move(o);
    return opts;
  }
  asio::io_context io;
  std::shared_ptr<wf::store> store;
  wf::testing::effect_log log;
  std::shared_ptr<fake_participant> participant = std::make_shared<fake_participant>(log);
  wf::runtime rt;
};

std::vector<json::object> parsed(const std::vector<std::string>& lines) {
  std::vector<json::object> out;
  for (const auto& l : lines) out.push_back(json::parse(l).as_object());
  return out;
}

const json::object* find(const std::vector<json::object>& lines, std::string_view event, std::string_view level = {}) {
  for (const auto& l : lines)
    if (l.at("event").as_string() == event && (level.empty() || l.at("level").as_string() == level)) return &l;
  return nullptr;
}

}  // namespace

TEST_CASE("the observer hears a workflow's life: creation, attempts, calls, writes, its end") {
  auto rec = std::make_shared<recorder>();
  observed o(rec, WF_EACH_STORE);
  o.participant->answer("B/action", "t");
  register_chain(o.rt, o.participant);
  REQUIRE(run(o.io, o.rt.execute("chain", "g1", chain_input({"A", "B"}))).succeeded());
  CHECK(rec->events == std::vector<std::string>{
                           "g1 created",
                           "g1 attempt 1",
                           "g1 call 01 A/action",
                           "g1 ended A/action ok",
                           "g1 written 1",
                           "g1 call 02 B/action",
                           "g1 ended B/action transient",
                           "g1 attempt 1 transient 'B/action unavailable' next",
                           "g1 attempt 2",
                           "g1 call 02 B/action",
                           "g1 ended B/action ok",
                           "g1 written 1",
                           "g1 written 1",
                           "g1 attempt 2 finished",
                           "g1 finished succeeded done:A/action,done:B/action",
                       });
}

TEST_CASE("the observer hears a rollback's compensations and a stuck workflow's reason") {
  auto rec = std::make_shared<recorder>();
  observed o(rec);
  o.participant->answer("B/action", "f");
  register_chain(o.rt, o.participant);
  REQUIRE_FALSE(run(o.io, o.rt.execute("chain", "g1", chain_input({"A", "B"}))).succeeded());
  auto has = [&](const std::string& e) {
    return std::find(rec->events.begin(), rec->events.end(), e) != rec->events.end();
  };
  CHECK(has("g1 ended B/action failure"));
  CHECK(has("g1 call 01 A/rollback"));
  CHECK(has("g1 ended A/rollback ok"));
  CHECK(has("g1 finished failed B/action refused"));

  auto bug = [](const wf::branch_context&) -> asio::awaitable<std::string> {
    throw std::invalid_argument("no such account");
    co_return "";
  };
  o.rt.register_workflow("buggy", [bug](wf::workflow& w, std::string) -> asio::awaitable<void> {
    co_await w.new_branch("X").run(bug);
  });
  CHECK_THROWS(run(o.io, o.rt.execute("buggy", "g2", "")));
  CHECK(has("g2 ended X/action bug"));
  CHECK(has("g2 attempt 1 stuck 'branch 'X' (operation 1): no such account'"));
  CHECK(has("g2 finished stuck branch 'X' (operation 1): no such account"));
}

TEST_CASE("a workflow resumed by another runner is reported as a takeover, and a lost lease as such") {
  auto rec = std::make_shared<recorder>();
  observed o(rec, WF_EACH_STORE);
  register_chain(o.rt, o.participant);
  // Left by a runner that died: owned by "dead", its lease run out.
  wf::workflow_state s;
  s.gid = "orphan";
  s.name = "chain";
  s.input = chain_input({"A"});
  s.owner = "dead";
  s.lease_expires = wf::wall_clock::now() - std::chrono::seconds(1);
  s.next_attempt_at = wf::wall_clock::now() - std::chrono::seconds(1);
  run(o.io, o.store->create(s));
  CHECK(run(o.io, o.rt.recover()) == 1);
  CHECK(run(o.io, o.rt.execute("chain", "orphan", chain_input({"A"}))).succeeded());
  CHECK(rec->events.front() == "orphan resumed from 'dead' takeover");
}

TEST_CASE("a transient error is logged at warn with gid, branch, attempt and the next retry time") {
  std::vector<std::string> lines;
  auto log = std::make_shared<wf::json_logger>(wf::log_options{wf::log_level::info, [&](std::string_view l) {
                                                                  lines.emplace_back(l);
                                                                }});
  observed o(log);
  o.participant->answer("B/action", "t");
  register_chain(o.rt, o.participant);
  REQUIRE(run(o.io, o.rt.execute("chain", "g1", chain_input({"A", "B"}))).succeeded());
  const auto all = parsed(lines);
  const auto* warn = find(all, "attempt_ended", "warn");
  REQUIRE(warn);
  CHECK(warn->at("gid").as_string() == "g1");
  CHECK(warn->at("workflow").as_string() == "chain");
  CHECK(warn->at("attempt").as_int64() == 1);
  CHECK(warn->at("result").as_string() == "transient");
  CHECK(warn->at("error").as_string() == "B/action unavailable");
  CHECK(warn->at("branch").as_string() == "02 B");
  CHECK(warn->contains("next_attempt_at"));
  CHECK(warn->contains("ts"));
  CHECK(find(all, "workflow_created", "info"));
  CHECK(find(all, "workflow_finished", "info")->at("status").as_string() == "succeeded");
  // Nothing below info.
  for (const auto& l : all) CHECK(l.at("level").as_string() != "debug");
}

TEST_CASE("log lines stay valid JSON whatever an error holds, and debug shows every call and write") {
  std::vector<std::string> lines;
  auto log = std::make_shared<wf::json_logger>(wf::log_options{wf::log_level::debug, [&](std::string_view l) {
                                                                  lines.emplace_back(l);
                                                                }});
  observed o(log);
  auto odd = [](const wf::branch_context&) -> asio::awaitable<std::string> {
    throw std::runtime_error("quote \" backslash \\ newline \n bad \xff\xfe byte");
    co_return "";
  };
  auto calls = std::make_shared<int>(0);
  auto ok_later = [calls, odd](const wf::branch_context& c) -> asio::awaitable<std::string> {
    if ((*calls)++ == 0) co_return co_await odd(c);
    co_return "fine";
  };
  wf::workflow_options fast = fast_retries();
  o.rt.register_workflow("odd", [ok_later](wf::workflow& w, std::string) -> asio::awaitable<std::string> {
    co_return co_await w.new_branch("Odd").run(ok_later);
  }, fast);
  REQUIRE(run(o.io, o.rt.execute("odd", "g1", "")).succeeded());
  const auto all = parsed(lines);  // throws if a line is not JSON
  const auto* warn = find(all, "attempt_ended", "warn");
  REQUIRE(warn);
  const std::string error(warn->at("error").as_string());
  CHECK(error.find("quote \" backslash \\ newline \n bad ") == 0);
  CHECK(error.find("\\xff\\xfe") != std::string::npos);
  CHECK(find(all, "call_started", "debug"));
  CHECK(find(all, "journal_written", "debug"));
}

TEST_CASE("a logged HTTP failure shows no header value") {
  std::vector<std::string> lines;
  auto log = std::make_shared<wf::json_logger>(wf::log_options{wf::log_level::debug, [&](std::string_view l) {
                                                                  lines.emplace_back(l);
                                                                }});
  observed o(log);
  wf::http::client_options copts;
  copts.headers = {{"Authorization", "Bearer s3cret-token"}};
  copts.timeout = std::chrono::milliseconds(500);
  auto http = std::make_shared<wf::http::client>(o.io.get_executor(), copts);
  auto call = http->action("http://127.0.0.1:1/transfer", "{}");
  wf::workflow_options once = fast_retries();
  once.retry.max_attempts = 1;
  o.rt.register_workflow("remote", [call](wf::workflow& w, std::string) -> asio::awaitable<void> {
    co_await w.new_branch("Remote").run(call);
  }, once);
  CHECK_FALSE(run(o.io, o.rt.execute("remote", "g1", "")).succeeded());
  REQUIRE_FALSE(lines.empty());
  for (const auto& l : lines) CHECK(l.find("s3cret") == std::string::npos);
}

TEST_CASE("an observer that throws does not disturb the runtime") {
  struct throwing final : wf::observer {
    void workflow_created(const wf::workflow_ref&) override { throw std::runtime_error("no"); }
    void call_started(const wf::workflow_ref&, const wf::branch_context&) override { throw std::runtime_error("no"); }
    void journal_written(const wf::workflow_ref&, std::size_t, std::chrono::nanoseconds) override {
      throw std::runtime_error("no");
    }
  };
  auto rec = std::make_shared<recorder>();
  observed o(wf::observe_all({std::make_shared<throwing>(), rec, nullptr}));
  register_chain(o.rt, o.participant);
  CHECK(run(o.io, o.rt.execute("chain", "g1", chain_input({"A"}))).succeeded());
  CHECK(rec->events.front() == "g1 created");  // the others still hear
}

namespace {
// The value of the sample `name{labels}` in a Prometheus text, or -1.
double sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  return -1;
}
}  // namespace

TEST_CASE("metrics count workflows, attempts and calls, in Prometheus' text format") {
  auto m = std::make_shared<wf::metrics>();
  observed o(m);
  o.participant->answer("B/action", "t");
  register_chain(o.rt, o.participant, fast_retries(), "we\"ird\\name");
  REQUIRE(run(o.io, o.rt.execute("we\"ird\\name", "g1", chain_input({"A", "B"}))).succeeded());
  const auto text = m->prometheus();
  const std::string wf_label = "workflow=\"we\\\"ird\\\\name\"";
  CHECK(sample(text, "wf_workflows_created_total{" + wf_label + "}") == 1);
  CHECK(sample(text, "wf_workflows_finished_total{" + wf_label + ",status=\"succeeded\"}") == 1);
  CHECK(sample(text, "wf_attempts_total{" + wf_label + ",result=\"transient\"}") == 1);
  CHECK(sample(text, "wf_attempts_total{" + wf_label + ",result=\"finished\"}") == 1);
  CHECK(sample(text, "wf_calls_total{" + wf_label + ",branch=\"B\",op=\"action\",result=\"transient\"}") == 1);
  CHECK(sample(text, "wf_calls_total{" + wf_label + ",branch=\"B\",op=\"action\",result=\"ok\"}") == 1);
  CHECK(sample(text, "wf_call_duration_seconds_count{" + wf_label + ",branch=\"A\",op=\"action\"}") == 1);
  CHECK(sample(text, "wf_call_duration_seconds_bucket{" + wf_label + ",branch=\"A\",op=\"action\",le=\"+Inf\"}") == 1);
  CHECK(sample(text, "wf_journal_write_duration_seconds_count") == 3);  // A, B, the decision
  CHECK(sample(text, "wf_leases_lost_total") == 0);
  // Every line is a comment (# HELP, # TYPE) or a sample "name{labels} value".
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    INFO(line);
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) continue;
    const auto space = line.rfind(' ');
    REQUIRE(space != std::string::npos);
    CHECK_NOTHROW(std::stod(line.substr(space + 1)));
    CHECK(line.rfind("wf_", 0) == 0);
  }
  // Buckets are cumulative.
  double last = 0;
  for (const char* le : {"0.0005", "0.001", "0.01", "0.1", "1", "10", "+Inf"}) {
    const double v = sample(text, std::string("wf_journal_write_duration_seconds_bucket{le=\"") + le + "\"}");
    CHECK(v >= last);
    last = v;
  }
}

TEST_CASE("the PostgreSQL store reports its group commits to an observer") {
  WF_REQUIRE_DATABASE();
  auto m = std::make_shared<wf::metrics>();
  auto opts = pg_options();
  opts.observer = m;
  auto store = wf::postgres_store::open(opts);
  asio::io_context io;
  wf::runtime rt(io.get_executor(), store);
  wf::testing::effect_log log;
  register_chain(rt, std::make_shared<fake_participant>(log));
  REQUIRE(run(io, rt.execute("chain", "g1", chain_input({"A", "B"}))).succeeded());
  const auto text = m->prometheus();
  CHECK(sample(text, "wf_store_group_commit_writes_count") >= 1);
  CHECK(sample(text, "wf_store_group_commit_writes_sum") == 4);  // create, A, B, the decision
}
