// The control server's HTTP side (control/http.hpp).
//
// One coroutine accepts; each connection is a coroutine of its own that reads
// a request, answers it, and goes on while the client keeps the connection
// alive. Everything runs on the control server's io_context (one thread), so
// the state below needs no lock. Bounds: 64 connections at once (more are
// closed on accept), 16 KiB of headers, `max_request_bytes` of body (413
// beyond), 30 s for each read and write.
#include "control/http.hpp"

#include "control/auth.hpp"

#include <wf/metrics.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <unordered_set>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace wf::control {

struct http_server::state {
  state(asio::io_context& io_, const control_options& o)
      : io(io_), acceptor(io_), tokens(o.read_tokens, o.admin_tokens), metrics(o.metrics),
        max_body(o.max_request_bytes) {}

  asio::io_context& io;
  tcp::acceptor acceptor;
  std::optional<ssl::context> tls;
  control::tokens tokens;
  std::shared_ptr<const wf::metrics> metrics;
  std::size_t max_body;
  unsigned short port = 0;

  // Touched on the io_context's thread only.
  bool stopping = false;
  std::size_t connections = 0;
  std::unordered_set<beast::tcp_stream*> live;
};

namespace {

using state = http_server::state;
using request = http::request<http::string_body>;
using response = http::response<http::string_body>;

constexpr std::size_t max_connections = 64;
constexpr std::size_t max_header_bytes = 16 * 1024;
constexpr auto io_timeout = std::chrono::seconds(30);
constexpr auto tuple = asio::as_tuple(asio::use_awaitable);

response reply(unsigned version, bool keep_alive, http::status s, std::string body,
               std::string_view type = "text/plain; charset=utf-8") {
  response r{s, version};
  r.set(http::field::server, "wf");
  r.set(http::field::content_type, type);
  r.set(http::field::cache_control, "no-store");
  r.keep_alive(keep_alive);
  r.body() = std::move(body);
  r.prepare_payload();
  return r;
}

response answer(const state& st, const request& req) {
  const auto say = [&req](http::status s, std::string body) {
    return reply(req.version(), req.keep_alive(), s, std::move(body));
  };
  if (req.method() != http::verb::get) {
    auto r = say(http::status::method_not_allowed, "wf control: only GET\n");
    r.set(http::field::allow, "GET");
    return r;
  }
  const std::string_view target(req.target().data(), req.target().size());
  const auto path = target.substr(0, target.find('?'));
  if (path == "/healthz") return say(http::status::ok, "ok\n");
  if (path != "/metrics") return say(http::status::not_found, "wf control: no such page\n");

  const auto it = req.find(http::field::authorization);
  std::optional<std::string_view> authorization;
  if (it != req.end()) authorization.emplace(it->value().data(), it->value().size());
  const auto v = st.tokens.judge(authorization, role::read);
  if (v != verdict::allowed) {
    const bool forbidden = v == verdict::read_only;
    auto r = say(forbidden ? http::status::forbidden : http::status::unauthorized,
                 "wf control: " + std::string(explain(v)) + "\n");
    if (!forbidden) r.set(http::field::www_authenticate, "Bearer realm=\"wf\"");
    return r;
  }
  if (!st.metrics) return say(http::status::not_found, "wf control: this server has no metrics (control_options::metrics)\n");
  return reply(req.version(), req.keep_alive(), http::status::ok, st.metrics->prometheus(),
               "text/plain; version=0.0.4; charset=utf-8");
}

// After a refusal: stops sending, and reads what the client still sends
// (1 MiB, 2 s at most) before the connection closes, so that closing it with
// unread bytes does not reset it before the client has read the refusal.
asio::awaitable<void> drain(beast::tcp_stream& conn) {
  boost::system::error_code ignored;
  conn.socket().shutdown(asio::socket_base::shutdown_send, ignored);
  conn.expires_after(std::chrono::seconds(2));
  char scrap[4096];
  for (std::size_t left = 1 << 20; left > 0;) {
    auto [error, n] = co_await conn.async_read_some(asio::buffer(scrap), tuple);
    if (error) break;
    left -= std::min(left, n);
  }
}

// Requests and answers on one connection, until it closes or errs.
template <class Stream>
asio::awaitable<void> exchange(state& st, Stream& stream, beast::tcp_stream& conn) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(max_header_bytes);
    parser.body_limit(st.max_body);
    conn.expires_after(io_timeout);
    auto [read_error, n] = co_await http::async_read(stream, buffer, parser, tuple);
    (void)n;
    if (read_error) {
      std::optional<response> refusal;
      if (read_error == http::error::body_limit)
        refusal = reply(11, false, http::status::payload_too_large, "wf control: the request is too large\n");
      else if (read_error == http::error::header_limit)
        refusal = reply(11, false, http::status::request_header_fields_too_large,
                        "wf control: the request's headers are too large\n");
      else if (read_error.category() == http::make_error_code(http::error::bad_target).category() &&
               read_error != http::error::end_of_stream && read_error != http::error::partial_message)
        refusal = reply(11, false, http::status::bad_request, "wf control: not an HTTP request\n");
      if (refusal) {
        conn.expires_after(io_timeout);
        co_await http::async_write(stream, *refusal, tuple);
        co_await drain(conn);
      }
      co_return;
    }
    auto resp = answer(st, parser.get());
    conn.expires_after(io_timeout);
    auto [write_error, m] = co_await http::async_write(stream, resp, tuple);
    (void)m;
    if (write_error || !resp.keep_alive() || st.stopping) co_return;
  }
}

// Counts a connection from its accept to its end, and lists its stream while
// it lives, for stop() to close.
struct connection {
  connection(state& s, beast::tcp_stream& c) : st(s), conn(c) { st.live.insert(&conn); }
  ~connection() {
    st.live.erase(&conn);
    --st.connections;
  }
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  state& st;
  beast::tcp_stream& conn;
};

asio::awaitable<void> serve_tls(std::shared_ptr<state> st, tcp::socket socket) {
  ssl::stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *st->tls);
  connection c(*st, stream.next_layer());
  if (st->stopping) co_return;
  stream.next_layer().expires_after(io_timeout);
  auto [handshake_error] = co_await stream.async_handshake(ssl::stream_base::server, tuple);
  if (handshake_error) co_return;
  co_await exchange(*st, stream, stream.next_layer());
  stream.next_layer().expires_after(std::chrono::seconds(5));
  co_await stream.async_shutdown(tuple);
}

asio::awaitable<void> serve_plain(std::shared_ptr<state> st, tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  connection c(*st, stream);
  if (st->stopping) co_return;
  co_await exchange(*st, stream, stream);
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> accept(std::shared_ptr<state> st) {
  for (;;) {
    auto [error, socket] = co_await st->acceptor.async_accept(tuple);
    if (st->stopping) co_return;
    if (error) {
      if (error == asio::error::operation_aborted) co_return;
      // Out of descriptors, or the like: back off a little rather than spin.
      asio::steady_timer pause(st->io, std::chrono::milliseconds(100));
      co_await pause.async_wait(tuple);
      continue;
    }
    if (st->connections >= max_connections) continue;  // (the socket closes here)
    ++st->connections;
    if (st->tls)
      asio::co_spawn(st->io, serve_tls(st, std::move(socket)), asio::detached);
    else
      asio::co_spawn(st->io, serve_plain(st, std::move(socket)), asio::detached);
  }
}

// The parts of `http_address`, which must have a port.
host_port listening_address(const std::string& address) {
  auto parts = split_address(address);
  if (parts.host.empty() || parts.port.empty() || parts.port.find_first_not_of("0123456789") != std::string::npos)
    throw std::invalid_argument("wf::control_server: the HTTP address '" + address + "' is not host:port");
  return parts;
}

}  // namespace

http_server::http_server(asio::io_context& io, const control_options& o)
    : state_(std::make_shared<state>(io, o)) {
  if (!o.tls_certificate_chain.empty()) {
    auto& tls = state_->tls.emplace(ssl::context::tls_server);
    tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                    ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    boost::system::error_code ec;
    tls.use_certificate_chain(asio::buffer(o.tls_certificate_chain), ec);
    if (!ec) tls.use_private_key(asio::buffer(o.tls_private_key), ssl::context::pem, ec);
    if (ec)
      throw std::invalid_argument("wf::control_server: the TLS certificate chain or private key cannot be used: " +
                                  ec.message());
  }
  const auto [host, port] = listening_address(o.http_address);
  boost::system::error_code ec;
  tcp::resolver resolver(io);
  const auto found = resolver.resolve(host, port, tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  const auto fail = [&](const boost::system::error_code& e) {
    throw std::runtime_error("wf::control_server: cannot listen for HTTP on '" + o.http_address + "': " + e.message());
  };
  if (ec) fail(ec);
  if (found.empty()) fail(asio::error::host_not_found);
  const tcp::endpoint where = found.begin()->endpoint();
  auto& acceptor = state_->acceptor;
  if (acceptor.open(where.protocol(), ec); ec) fail(ec);
  acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (acceptor.bind(where, ec); ec) fail(ec);
  if (acceptor.listen(asio::socket_base::max_listen_connections, ec); ec) fail(ec);
  state_->port = acceptor.local_endpoint().port();
  asio::co_spawn(io, accept(state_), asio::detached);
}

http_server::~http_server() = default;

unsigned short http_server::port() const noexcept { return state_->port; }

void http_server::stop() {
  asio::post(state_->io, [st = state_] {
    st->stopping = true;
    boost::system::error_code ignored;
    st->acceptor.close(ignored);
    for (auto* conn : st->live) conn->close();
  });
}

}  // namespace wf::control
