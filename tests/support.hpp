// Shared by wf's tests: run coroutines to completion, and a scripted fake
// participant whose effects go to a wf::testing::effect_log.
#ifndef WF_TESTS_SUPPORT_HPP
#define WF_TESTS_SUPPORT_HPP

#include <wf/json.hpp>
#include <wf/memory_store.hpp>
#include <wf/postgres_store.hpp>
#include <wf/runtime.hpp>
#include <wf/testing.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <random>
#include <cstdlib>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace wf_test {

namespace asio = boost::asio;
namespace json = boost::json;

/// Built with a sanitizer, whose code runs several times slower: tests whose
/// point depends on wall-clock margins (short leases) widen them.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool slow_build = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
inline constexpr bool slow_build = true;
#else
inline constexpr bool slow_build = false;
#endif
#else
inline constexpr bool slow_build = false;
#endif

/// Runs `a` on `io` until it completes and returns its value (rethrows).
template <class T>
T run(asio::io_context& io, asio::awaitable<T> a) {
  std::optional<T> out;
  std::exception_ptr error;
  asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
    if (e)
      error = e;
    else
      out = std::move(v);
    io.stop();
  });
  io.restart();
  io.run();
  io.restart();
  if (error) std::rethrow_exception(error);
  REQUIRE(out.has_value());
  return std::move(*out);
}

/// Runs `a` on `io` until it completes (rethrows).
inline void run(asio::io_context& io, asio::awaitable<void> a) {
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(io, std::move(a), [&](std::exception_ptr e) {
    error = e;
    done = true;
    io.stop();
  });
  io.restart();
  io.run();
  io.restart();
  if (error) std::rethrow_exception(error);
  REQUIRE(done);
}

/// Coroutines of one io_context wait on it until it opens; then it stays open.
class gate {
 public:
  explicit gate(asio::any_io_executor ex) : timer_(std::move(ex), asio::steady_timer::time_point::max()) {}
  bool is_open() const noexcept { return open_; }
  void open() {
    open_ = true;
    timer_.cancel();
  }
  asio::awaitable<void> wait() {
    while (!open_) {
      boost::system::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

 private:
  asio::steady_timer timer_;
  bool open_ = false;
};

/// Runs `a` on `io` until it completes (at most 20 s: a gate that never
/// opens fails the test instead of hanging it) and returns its value.
template <class T>
T run_bounded(asio::io_context& io, asio::awaitable<T> a) {
  struct result {
    std::optional<T> value;
    std::exception_ptr error;
    bool done = false;
  };
  auto r = std::make_shared<result>();
  asio::co_spawn(io, std::move(a), [r, &io](std::exception_ptr e, T v) {
    if (e)
      r->error = e;
    else
      r->value = std::move(v);
    r->done = true;
    io.stop();
  });
  io.restart();
  io.run_for(std::chrono::seconds(20));
  io.restart();
  if (!r->done) FAIL("did not finish within 20 s (an action waits on a gate that never opens?)");
  if (r->error) std::rethrow_exception(r->error);
  return std::move(*r->value);
}

/// The stores the store-independent tests run against: always "memory", and
/// "postgres" when WF_TEST_PG_URL names a database (scripts/test starts one).
inline std::vector<std::string> store_kinds() {
  const char* url = std::getenv("WF_TEST_PG_URL");
  if (url && *url) return {"memory", "postgres"};
  return {"memory"};
}

/// The PostgreSQL the tests use; empty if none.
inline std::string pg_url() {
  const char* url = std::getenv("WF_TEST_PG_URL");
  return url ? url : "";
}

/// For tests that need PostgreSQL: skips the rest of the test, with a
/// warning, when WF_TEST_PG_URL is not set.
#define WF_REQUIRE_DATABASE()                                      \
  if (wf_test::pg_url().empty()) {                                 \
    WARN("WF_TEST_PG_URL is not set: this test needs PostgreSQL"); \
    return;                                                        \
  }

/// `prefix` then `n` in decimal ("g7"). Rather than `"g" + std::to_string(n)`:
/// at -O3, GCC 12 inlines operator+(const char*, std::string&&) into a memcpy
/// it wrongly calls out of bounds (-Wstringop-overflow, -Wrestrict), which
/// fails the Release build under WF_WERROR.
inline std::string numbered(std::string prefix, long long n) {
  prefix += std::to_string(n);
  return prefix;
}

/// A schema name no other test (or test process, or earlier run on the same
/// database: process ids get reused) uses.
inline std::string fresh_schema() {
  static std::atomic<int> counter{0};
  static const std::string run = [] {
    std::random_device rd;
    char buf[20];
    std::snprintf(buf, sizeof buf, "%08x", rd());
    return std::string(buf);
  }();
  return numbered("t", ::getpid()) + "_" + run + "_" + std::to_string(counter++);
}

/// Options for a postgres store of the test database, in `schema`.
inline wf::postgres_options pg_options(std::string schema = fresh_schema()) {
  wf::postgres_options o;
  o.connection = pg_url();
  o.schema = std::move(schema);
  return o;
}

/// A store of `kind` over `schema` (postgres).
inline std::shared_ptr<wf::store> open_store(const std::string& kind, const std::string& schema) {
  if (kind == "memory") return std::make_shared<wf::memory_store>();
  return wf::postgres_store::open(pg_options(schema));
}

/// An empty store of `kind`; for postgres, in a schema of its own.
inline std::shared_ptr<wf::store> make_store(const std::string& kind) { return open_store(kind, fresh_schema()); }

/// Opens stores of `kind` over one set of data: for memory, the same object
/// each time; for postgres, a new store (threads, connections) over one
/// schema, so that each "process" of a test can have, and drop, its own.
inline std::function<std::shared_ptr<wf::store>()> shared_data(const std::string& kind) {
  if (kind == "memory") {
    auto m = std::make_shared<wf::memory_store>();
    return [m] { return m; };
  }
  return [kind, schema = fresh_schema()] { return open_store(kind, schema); };
}

/// For wf::testing::crash_test::make_store: each run in a store of its own,
/// shared by the processes of that run.
inline std::function<std::shared_ptr<wf::store>(std::size_t)> store_per_run(const std::string& kind) {
  struct state {
    std::string prefix = fresh_schema();
    std::size_t run = static_cast<std::size_t>(-1);
    std::shared_ptr<wf::store> memory;
  };
  auto st = std::make_shared<state>();
  return [kind, st](std::size_t run) -> std::shared_ptr<wf::store> {
    if (kind == "memory") {
      if (run != st->run || !st->memory) st->memory = std::make_shared<wf::memory_store>();
      st->run = run;
      return st->memory;
    }
    return open_store(kind, st->prefix + "_r" + std::to_string(run));
  };
}

/// Runs a test case once per store kind.
#define WF_EACH_STORE GENERATE(Catch::Generators::from_range(wf_test::store_kinds()))

/// Retries fast, so that tests with transient errors take milliseconds.
inline wf::workflow_options fast_retries() {
  wf::workflow_options o;
  o.retry.initial_interval = std::chrono::milliseconds(1);
  o.retry.max_interval = std::chrono::milliseconds(4);
  return o;
}

/// A fake participant. Each call `name/op` answers from its script, in
/// order: 'f' business failure (for good), 't' transient error, 'o' ongoing,
/// 'T' transient forever; when the script is empty, success. Effects go through `log`
/// (filtered as a barrier would); every call, duplicates too, goes to `calls`.
struct fake_participant {
  explicit fake_participant(wf::testing::effect_log& l) : log(l) {}

  wf::testing::effect_log& log;
  std::map<std::string, std::deque<char>> script;
  std::vector<std::string> calls;

  void answer(const std::string& call, std::string replies) {
    for (char c : replies) script[call].push_back(c);
  }

  asio::awaitable<std::string> call(const wf::branch_context& c, std::string input = {}) {
    const std::string key = std::string(c.name) + "/" + std::string(c.op);
    calls.push_back(key);
    // Answer asynchronously, as a real participant does.
    co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    auto& q = script[key];
    if (!q.empty()) {
      const char r = q.front();
      // A business refusal stands: asked again (after a crash), the participant refuses again.
      if (r != 'T' && r != 'f') q.pop_front();
      if (r == 'f') throw wf::failure(key + " refused");
      if (r == 't' || r == 'T') throw std::runtime_error(key + " unavailable");
      if (r == 'o') throw wf::ongoing(key + " in progress");
    }
    std::string what = key;
    if (!input.empty()) what += " " + input;
    log.apply(c, std::move(what));
    co_return "done:" + key;
  }
};

/// An action calling `p`. (A function's result, not a lambda written inside the
/// co_await expression: GCC 12 destroys such a lambda's captures twice.)
inline wf::raw_action call_action(std::shared_ptr<fake_participant> p, std::string input = {}) {
  return [p, input](const wf::branch_context& c) { return p->call(c, input); };
}

/// A handler calling `p` (the op is in the context).
inline wf::handler call_handler(std::shared_ptr<fake_participant> p) {
  return [p](const wf::branch_context& c) -> asio::awaitable<void> { co_await p->call(c); };
}

/// The "chain" workflow used across tests. Input: {"branches":["A","B"],
/// "commit":bool, "finish":bool}; each branch registers on_rollback (and
/// on_commit / on_finish if asked) then calls the participant. Result: the
/// branch results joined with ','.
inline void register_chain(wf::runtime& rt, std::shared_ptr<fake_participant> p,
                           wf::workflow_options options = fast_retries(), std::string name = "chain") {
  rt.register_workflow(
      std::move(name),
      [p](wf::workflow& w, json::value in) -> asio::awaitable<std::string> {
        std::string out;
        const auto& o = in.as_object();
        const bool commit = o.contains("commit") && o.at("commit").as_bool();
        const bool finish = o.contains("finish") && o.at("finish").as_bool();
        for (const auto& b : o.at("branches").as_array()) {
          auto br = w.new_branch(std::string(b.as_string()));
          br.on_rollback(call_handler(p));
          if (commit) br.on_commit(call_handler(p));
          if (finish) br.on_finish(call_handler(p));
          auto r = co_await br.run(call_action(p));
          if (!out.empty()) out += ",";
          out += r;
        }
        co_return out;
      },
      std::move(options));
}

inline std::string chain_input(std::vector<std::string> branches, bool commit = false, bool finish = false) {
  json::object o;
  json::array a;
  for (auto& b : branches) a.emplace_back(b);
  o["branches"] = std::move(a);
  o["commit"] = commit;
  o["finish"] = finish;
  return json::serialize(o);
}

/// The effects in `log` as "A/action", "A/rollback"...
inline std::vector<std::string> effects(const wf::testing::effect_log& log) {
  std::vector<std::string> out;
  for (const auto& e : log.effects()) out.push_back(e.what);
  return out;
}

/// Whether crash tests on store `kind` inject faults at lease renewals too
/// (crash_test::renewal_faults). On PostgreSQL each crash-test run costs a
/// fresh schema, and the renewal scenarios would double the suite's longest
/// tests, so there they are on only where a test asks for them
/// (tests/testing/crash_test_test.cpp): what a renewal fault exercises is
/// the runtime's, the same over every store, and every store's renew goes
/// through the three faults in the store contract tests.
inline bool renewal_faults_on(const std::string& kind) { return kind == "memory"; }

/// The fault points check_crash_recovery checks for a workflow of `writes`
/// writes: each write refused, in doubt and taken over (but the creation),
/// and, with `renewals`, the same three at a renewal during each write but
/// the creation.
inline std::size_t crash_points_for(std::size_t writes, bool renewals) {
  return 3 * writes - 1 + (renewals ? 3 * (writes - 1) : 0);
}

/// The chain workflow as a wf::testing::crash_test, with a fresh participant
/// scripted by `script` for each run.
inline wf::testing::crash_test chain_crash_test(const std::string& kind, const std::string& input,
                                                std::function<void(fake_participant&)> script = {},
                                                wf::workflow_options options = fast_retries(),
                                                std::function<std::string(std::string)> normalize = {}) {
  wf::testing::crash_test t;
  t.normalize = std::move(normalize);
  t.workflow = "chain";
  t.input = input;
  t.make_store = store_per_run(kind);
  t.renewal_faults = renewal_faults_on(kind);
  t.run_limit = std::chrono::seconds(10);
  t.setup = [script, options](wf::testing::effect_log& log) {
    auto p = std::make_shared<fake_participant>(log);
    if (script) script(*p);
    return std::function<void(wf::runtime&)>([p, options](wf::runtime& rt) { register_chain(rt, p, options); });
  };
  return t;
}

/// Runs chain_crash_test(...) through wf::testing::check_crash_recovery.
inline wf::testing::crash_test_result crash_check_chain(
    const std::string& kind, const std::string& input, std::function<void(fake_participant&)> script = {},
    wf::workflow_options options = fast_retries(), std::function<std::string(std::string)> normalize = {}) {
  return wf::testing::check_crash_recovery(
      chain_crash_test(kind, input, std::move(script), std::move(options), std::move(normalize)));
}

/// A fresh io_context, store (memory unless told) and runtime.
struct fixture {
  explicit fixture(const std::string& k = "memory") : kind(k), store(make_store(k)) {}

  std::string kind;
  asio::io_context io;
  std::shared_ptr<wf::store> store;
  wf::testing::effect_log log;
  std::shared_ptr<fake_participant> participant = std::make_shared<fake_participant>(log);
  wf::runtime rt{io.get_executor(), store};

  wf::outcome execute(const std::string& name, const std::string& gid, const std::string& input) {
    return run(io, rt.execute(name, gid, input));
  }
  std::optional<wf::workflow_state> state(const std::string& gid) { return run(io, store->find(gid)); }
  std::vector<wf::journal_record> records(const std::string& gid) { return run(io, store->journal(gid)); }
};

}  // namespace wf_test

#endif  // WF_TESTS_SUPPORT_HPP
