// The bank's ledger (PostgreSQL + barrier) and its HTTP server (Boost.Beast).
// The gRPC server is in grpc_service.cpp.
#include "bank_service.hpp"

#include <wf/errors.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>

#include <pqxx/except>
#include <pqxx/result>

#include <cstdio>
#include <stdexcept>
#include <thread>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace transfer {

namespace {

// The bank's tables live next to its barrier table, so its schema follows the
// barrier's naming rule: wf::valid_identifier, which also makes it safe to quote.
void check_schema_name(const std::string& s) {
  if (!wf::valid_identifier(s))
    throw std::invalid_argument("bank: schema name must be 1-63 characters of a-z, 0-9 and _, not starting with a "
                                "digit: '" + s + "'");
}

// Which ops a method accepts: wf's op, and DTM's name for it in sagas and TCC.
bool op_fits(const std::string& method, const std::string& op) {
  auto ends = [&](const char* suffix) {
    const std::string s(suffix);
    return method.size() > s.size() && method.compare(method.size() - s.size(), s.size(), s) == 0;
  };
  if (ends("Revert")) return op == "rollback" || op == "compensate";
  if (ends("Try")) return op == "action" || op == "try";
  if (ends("Confirm")) return op == "commit" || op == "confirm";
  if (ends("Cancel")) return op == "rollback" || op == "cancel";
  return op == "action";
}

bool known_method(const std::string& m) {
  static const char* const methods[] = {"TransOut",        "TransOutRevert", "TransIn",        "TransInRevert",
                                        "TransOutTry",     "TransOutConfirm", "TransOutCancel", "TransInTry",
                                        "TransInConfirm",  "TransInCancel"};
  for (const char* k : methods)
    if (m == k) return true;
  return false;
}

std::string signed_amount(const std::string& method, std::int64_t amount) {
  if (method == "TransOut" || method == "TransInRevert" || method == "TransOutConfirm") return "-" + std::to_string(amount);
  if (method == "TransIn" || method == "TransOutRevert" || method == "TransInConfirm") return "+" + std::to_string(amount);
  if (method == "TransOutTry") return "freeze " + std::to_string(amount);
  if (method == "TransOutCancel") return "unfreeze " + std::to_string(amount);
  return std::to_string(amount);
}

}  // namespace

std::string describe(const call_record& r) {
  char line[512];
  std::snprintf(line, sizeof line, "%-7s %-15s gid=%s branch=%s op=%-8s %s %s: %s", r.bank.c_str(), r.method.c_str(),
                r.gid.c_str(), r.branch_id.c_str(), r.op.c_str(), r.account.c_str(),
                signed_amount(r.method, r.amount).c_str(), r.outcome.c_str());
  return line;
}

// ---- ledger

ledger::ledger(ledger_options options) : options_(std::move(options)) {
  check_schema_name(options_.schema);
  accounts_ = "\"" + options_.schema + "\".accounts";
  barrier_table_ = options_.schema + ".barrier";
}

ledger::~ledger() = default;

ledger::lease ledger::acquire() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return lease(*this, std::move(c));
    }
  }
  return lease(*this, std::make_unique<pqxx::connection>(options_.conninfo));
}

void ledger::release(std::unique_ptr<pqxx::connection> c) {
  std::lock_guard lock(mutex_);
  if (idle_.size() < 16) idle_.push_back(std::move(c));
}

void ledger::setup() {
  auto c = acquire();
  {
    pqxx::work tx(*c);
    tx.exec("CREATE SCHEMA IF NOT EXISTS \"" + options_.schema + "\"");
    tx.exec("CREATE TABLE IF NOT EXISTS " + accounts_ +
            " (account text PRIMARY KEY,"
            "  balance bigint NOT NULL CHECK (balance >= 0),"
            "  frozen bigint NOT NULL DEFAULT 0 CHECK (frozen >= 0 AND frozen <= balance))");
    tx.commit();
  }
  wf::create_barrier_table(*c, barrier_table_);
}

void ledger::set_balance(const std::string& account, std::int64_t balance) {
  auto c = acquire();
  pqxx::work tx(*c);
  tx.exec_params("INSERT INTO " + accounts_ +
                     " (account, balance, frozen) VALUES ($1, $2, 0)"
                     " ON CONFLICT (account) DO UPDATE SET balance = EXCLUDED.balance, frozen = 0",
                 account, balance);
  tx.commit();
}

std::map<std::string, ledger::account_state> ledger::balances() {
  auto c = acquire();
  std::map<std::string, account_state> out;
  {
    pqxx::read_transaction tx(*c);
    for (const auto& row : tx.exec("SELECT account, balance, frozen FROM " + accounts_ + " ORDER BY account"))
      out[row[0].as<std::string>()] = {row[1].as<std::int64_t>(), row[2].as<std::int64_t>()};
  }
  return out;
}

void ledger::script(const std::string& method, scripted answer, int times) {
  std::lock_guard lock(mutex_);
  for (int i = 0; i < times; ++i) script_[method].push_back(answer);
}

void ledger::on_call(std::function<void(const call_record&)> observer) {
  std::lock_guard lock(mutex_);
  observer_ = std::move(observer);
}

void ledger::disturb(disturbance d, std::chrono::milliseconds period) {
  std::lock_guard lock(mutex_);
  disturbance_ = period.count() > 0 ? d : disturbance::none;
  disturbed_until_ = std::chrono::steady_clock::now() + period;
}

std::pair<disturbance, std::chrono::milliseconds> ledger::disturbed() const {
  std::lock_guard lock(mutex_);
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(disturbed_until_ - std::chrono::steady_clock::now());
  if (disturbance_ == disturbance::none || left.count() <= 0) return {disturbance::none, std::chrono::milliseconds(0)};
  return {disturbance_, left};
}

void ledger::record(call_record r) {
  std::function<void(const call_record&)> observer;
  {
    std::lock_guard lock(mutex_);
    observer = observer_;
  }
  if (observer) observer(r);
}

// The business rules, in the barrier's transaction. A refusal throws
// wf::failure: the transaction rolls back and the barrier records nothing.
std::string ledger::apply(const std::string& method, const wf::barrier_info& info, const bank_request& req,
                          pqxx::connection& c) {
  wf::barrier guard(info, barrier_table_);
  const std::string& t = accounts_;
  const bool ran = guard.call(c, [&](pqxx::work& tx) {
    auto must_exist = [&] {
      if (tx.exec_params("SELECT 1 FROM " + t + " WHERE account = $1", req.account).empty())
        throw wf::failure(options_.name + ": no account '" + req.account + "'");
    };
    auto update = [&](const std::string& set, const std::string& where = "") {
      return tx.exec_params("UPDATE " + t + " SET " + set + " WHERE account = $1" + where, req.account, req.amount)
          .affected_rows();
    };
    if (method == "TransOut" || method == "TransOutTry") {
      if (req.fail) throw wf::failure(options_.name + ": " + method + " refused as told");
      const auto n = method == "TransOut" ? update("balance = balance - $2", " AND balance - frozen >= $2")
                                          : update("frozen = frozen + $2", " AND balance - frozen >= $2");
      if (n == 0) {
        must_exist();
        throw wf::failure(options_.name + ": insufficient funds in '" + req.account + "'");
      }
    } else if (method == "TransIn" || method == "TransInTry") {
      if (req.fail) throw wf::failure(options_.name + ": " + method + " refused as told");
      must_exist();
      if (method == "TransIn") update("balance = balance + $2");
    } else if (method == "TransOutRevert" || method == "TransInConfirm") {
      if (update("balance = balance + $2") == 0) throw std::runtime_error("no account '" + req.account + "'");
    } else if (method == "TransInRevert") {
      if (update("balance = balance - $2") == 0) throw std::runtime_error("no account '" + req.account + "'");
    } else if (method == "TransOutConfirm") {
      if (update("balance = balance - $2, frozen = frozen - $2") == 0)
        throw std::runtime_error("no account '" + req.account + "'");
    } else if (method == "TransOutCancel") {
      if (update("frozen = frozen - $2") == 0) throw std::runtime_error("no account '" + req.account + "'");
    }
    // TransInCancel: nothing was reserved; the barrier row is all it leaves.
  });
  return ran ? "applied" : "absorbed";
}

std::string ledger::serve(const std::string& method, const wf::barrier_info& info, const bank_request& request) {
  if (!known_method(method)) throw std::invalid_argument("no such method: " + method);
  if (!op_fits(method, info.op)) throw std::invalid_argument(method + " does not take op '" + info.op + "'");
  if (request.amount <= 0) throw std::invalid_argument("amount must be positive");

  call_record r{options_.name, method, info.gid, info.branch_id, info.op, request.account, request.amount, {}};
  std::optional<scripted> answer;
  {
    std::lock_guard lock(mutex_);
    auto it = script_.find(method);
    if (it != script_.end() && !it->second.empty()) {
      answer = it->second.front();
      it->second.pop_front();
    }
  }
  const disturbance disturbed_now = disturbed().first;
  try {
    if (disturbed_now == disturbance::error || disturbed_now == disturbance::silent)
      throw std::runtime_error("disturbed: answering errors for a while");
    if (disturbed_now == disturbance::ongoing) throw wf::ongoing(method + ": disturbed: answering 'not yet' for a while");
    if (answer == scripted::failure) throw wf::failure(options_.name + ": " + method + " refused (scripted)");
    if (answer == scripted::ongoing) throw wf::ongoing(method + ": scripted ongoing");
    if (answer == scripted::error) throw std::runtime_error("scripted error");
    r.outcome = apply(method, info, request, *acquire());
    record(r);
    return r.outcome;
  } catch (const wf::failure& e) {
    std::string reason = e.what();
    if (reason.rfind(options_.name + ": ", 0) == 0) reason.erase(0, options_.name.size() + 2);
    r.outcome = "refused: " + reason;
    record(r);
    throw;
  } catch (const wf::ongoing&) {
    r.outcome = "ongoing";
    record(r);
    throw;
  } catch (const std::exception& e) {
    r.outcome = std::string("error: ") + e.what();
    record(r);
    throw;
  }
}

// ---- HTTP

struct http_server::impl {
  impl(ledger& b, const std::string& address, unsigned short port, int threads)
      : bank(b), io(threads), acceptor(io, tcp::endpoint(asio::ip::make_address(address), port)) {
    bound_port = acceptor.local_endpoint().port();
    asio::co_spawn(io, accept(), asio::detached);
    for (int i = 0; i < threads; ++i) pool.emplace_back([this] { io.run(); });
  }
  ~impl() {
    io.stop();  // the sessions and the accept loop die with the io_context
    for (auto& t : pool) t.join();
  }

  using response = bhttp::response<bhttp::string_body>;

  response answer(bhttp::status status, std::string body, const char* type = "text/plain") {
    response res{status, 11};
    res.set(bhttp::field::content_type, type);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
  }

  response handle(const bhttp::request<bhttp::string_body>& req) {
    auto target = boost::urls::parse_origin_form(req.target());
    if (!target) return answer(bhttp::status::bad_request, "malformed target");
    const std::string path(target->path());
    if (req.method() == bhttp::verb::get && path == "/api/balances") {
      try {
        boost::json::object o;
        for (const auto& [account, s] : bank.balances()) {
          boost::json::object a;
          a["balance"] = s.balance;
          a["frozen"] = s.frozen;
          o[account] = std::move(a);
        }
        return answer(bhttp::status::ok, boost::json::serialize(o), "application/json");
      } catch (const std::exception& e) {
        return answer(bhttp::status::internal_server_error, e.what());
      }
    }
    if (req.method() == bhttp::verb::post && path == "/admin/disturb") return disturb(*target);
    if (req.method() != bhttp::verb::post || path.rfind("/api/", 0) != 0)
      return answer(bhttp::status::not_found, "no such endpoint: " + path);
    const std::string method = path.substr(5);
    try {
      const wf::barrier_info info = wf::barrier_from_query(std::string(req.target()));
      bank_request request;
      boost::system::error_code ec;
      auto body = boost::json::parse(req.body(), ec);
      const auto* o = ec ? nullptr : body.if_object();
      const auto* account = o ? o->if_contains("account") : nullptr;
      const auto* amount = o ? o->if_contains("amount") : nullptr;
      const auto* fail = o ? o->if_contains("fail") : nullptr;
      if (!account || !account->is_string() || !amount || !amount->is_int64() || (fail && !fail->is_bool()))
        return answer(bhttp::status::bad_request, R"(body must be {"account":string,"amount":integer,"fail":bool})");
      request.account = std::string(account->get_string());
      request.amount = amount->get_int64();
      request.fail = fail && fail->get_bool();
      const std::string outcome = bank.serve(method, info, request);
      return answer(bhttp::status::ok, "{\"outcome\":\"" + outcome + "\"}", "application/json");
    } catch (const wf::failure& e) {
      return answer(bhttp::status::conflict, e.what());
    } catch (const wf::ongoing& e) {
      return answer(static_cast<bhttp::status>(425), e.what());
    } catch (const std::invalid_argument& e) {
      return answer(bhttp::status::bad_request, e.what());
    } catch (const std::exception& e) {
      return answer(bhttp::status::internal_server_error, e.what());
    }
  }

  // POST /admin/disturb?mode=error|ongoing|silent|none&ms=N
  response disturb(const boost::urls::url_view& target) {
    const auto params = target.params();
    const auto mode = params.find("mode");
    const auto ms = params.find("ms");
    static const std::pair<const char*, disturbance> modes[] = {{"none", disturbance::none},
                                                                {"error", disturbance::error},
                                                                {"ongoing", disturbance::ongoing},
                                                                {"silent", disturbance::silent}};
    if (mode == params.end() || ms == params.end())
      return answer(bhttp::status::bad_request, "want ?mode=error|ongoing|silent|none&ms=N");
    for (const auto& [name, d] : modes) {
      if ((*mode).value != name) continue;
      long long period = 0;
      try {
        period = std::stoll((*ms).value);
      } catch (const std::exception&) {
        period = -1;
      }
      if (period < 0 || period > 600000) return answer(bhttp::status::bad_request, "ms must be 0..600000");
      bank.disturb(d, std::chrono::milliseconds(period));
      return answer(bhttp::status::ok, std::string(name) + " for " + std::to_string(period) + " ms");
    }
    return answer(bhttp::status::bad_request, "mode must be error, ongoing, silent or none");
  }

  asio::awaitable<void> session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    boost::system::error_code ec;
    for (;;) {
      bhttp::request<bhttp::string_body> req;
      stream.expires_after(std::chrono::seconds(60));
      co_await bhttp::async_read(stream, buffer, req, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      if (const auto [d, left] = bank.disturbed(); d == disturbance::silent && req.target().starts_with("/api/")) {
        // Answer nothing: hold the request for the rest of the period, then hang up.
        asio::steady_timer quiet(stream.get_executor(), left);
        co_await quiet.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        break;
      }
      response res = handle(req);  // blocks this thread on the database: the pool has several
      res.keep_alive(req.keep_alive());
      co_await bhttp::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || !req.keep_alive()) break;
    }
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  asio::awaitable<void> accept() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      if (ec) continue;
      asio::co_spawn(io, session(std::move(socket)), asio::detached);
    }
  }

  ledger& bank;
  unsigned short bound_port = 0;
  asio::io_context io;
  tcp::acceptor acceptor;
  std::vector<std::thread> pool;
};

http_server::http_server(ledger& bank, const std::string& address, unsigned short port, int threads)
    : impl_(std::make_unique<impl>(bank, address, port, threads)) {}

http_server::~http_server() = default;

unsigned short http_server::port() const noexcept { return impl_->bound_port; }

std::string http_server::base_url() const { return "http://127.0.0.1:" + std::to_string(port()); }

}  // namespace transfer
