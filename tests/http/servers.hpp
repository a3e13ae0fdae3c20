// Servers on loopback for the HTTP client's tests: a scripted Beast server,
// plain or TLS (with the test certificate of tests/http/data), and a server
// that accepts and then says nothing.
#ifndef WF_TESTS_HTTP_SERVERS_HPP
#define WF_TESTS_HTTP_SERVERS_HPP

#include "support.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <openssl/ssl.h>

#include <functional>
#include <string>
#include <vector>

namespace wf_test {

namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

/// A file of tests/http/data (the test CA, the server's certificate and key).
inline std::string test_data(const std::string& name) { return WF_SOURCE_DIR "/tests/http/data/" + name; }

/// The server side of the test certificate: localhost and 127.0.0.1, signed by data/ca.crt.
inline ssl::context test_server_tls() {
  ssl::context c(ssl::context::tls_server);
  c.use_certificate_chain_file(test_data("server.crt"));
  c.use_private_key_file(test_data("server.key"), ssl::context::pem);
  return c;
}

/// Waits until the io_context stops (for a server that must never answer).
inline asio::awaitable<void> wait_forever(asio::io_context& io) {
  asio::steady_timer forever(io, asio::steady_timer::time_point::max());
  boost::system::error_code ec;
  co_await forever.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

/// Answers each request from its script (status, body), in order; 200 "ok"
/// when the script is empty. Records every request. Over TLS when given a
/// context (it must outlive the server).
struct test_server {
  explicit test_server(asio::io_context& io, ssl::context* tls = nullptr, const char* address = "127.0.0.1")
      : io(io), tls(tls), acceptor(io, tcp::endpoint(asio::ip::make_address(address), 0)) {
    asio::co_spawn(io, accept_loop(), asio::detached);
  }

  asio::io_context& io;
  ssl::context* tls;
  tcp::acceptor acceptor;
  std::deque<std::pair<int, std::string>> script;
  std::vector<std::string> targets;
  std::vector<bhttp::request<bhttp::string_body>> requests;
  std::vector<std::string> server_names;  // TLS: the name each handshake asked for (SNI), "" for none
  int accepted = 0;
  int failed_handshakes = 0;
  bool silent = false;             // read requests, never answer
  std::function<void()> on_request;  // called with each request read, before any answer
  bool close_after_reply = false;  // say keep-alive, then close anyway
  std::size_t body_size = 0;       // if set, answer 200 with a body this large
  std::string raw_reply;           // if set, write these bytes instead of a response...
  bool hold_open = false;          // ...and then keep the connection open, saying nothing more

  std::string url(const std::string& path, const std::string& host = "") const {
    const auto endpoint = acceptor.local_endpoint();
    return std::string(tls ? "https" : "http") + "://" + (host.empty() ? endpoint.address().to_string() : host) +
           ":" + std::to_string(endpoint.port()) + path;
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      boost::system::error_code ec;
      auto socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      ++accepted;
      asio::co_spawn(io, session(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> session(tcp::socket socket) {
    if (!tls) {
      co_await serve(socket);
      co_return;
    }
    ssl::stream<tcp::socket> stream(std::move(socket), *tls);
    boost::system::error_code ec;
    co_await stream.async_handshake(ssl::stream_base::server, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      ++failed_handshakes;
      co_return;
    }
    const char* name = SSL_get_servername(stream.native_handle(), TLSEXT_NAMETYPE_host_name);
    server_names.push_back(name ? name : "");
    co_await serve(stream);
  }

  template <class Stream>
  asio::awaitable<void> serve(Stream& stream) {
    boost::beast::flat_buffer buffer;
    for (;;) {
      boost::system::error_code ec;
      bhttp::request<bhttp::string_body> req;
      co_await bhttp::async_read(stream, buffer, req, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      targets.push_back(std::string(req.target()));
      requests.push_back(req);
      if (on_request) on_request();
      if (silent) {
        co_await wait_forever(io);
        co_return;
      }
      if (!raw_reply.empty()) {
        co_await asio::async_write(stream, asio::buffer(raw_reply), asio::redirect_error(asio::use_awaitable, ec));
        if (hold_open) co_await wait_forever(io);
        co_return;
      }
      int status = 200;
      std::string body = "ok";
      if (!script.empty()) {
        std::tie(status, body) = script.front();
        script.pop_front();
      }
      if (body_size) body.assign(body_size, 'x');
      bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), 11};
      res.keep_alive(true);
      res.body() = body;
      res.prepare_payload();
      co_await bhttp::async_write(stream, res, asio::redirect_error(asio::use_awaitable, ec));
      if (ec || close_after_reply) co_return;
    }
  }
};

/// Accepts connections, reads the first bytes a client sends on each (a TLS
/// ClientHello, the start of a request), tells `on_bytes`, and then neither
/// reads nor writes anything more, keeping the connection open.
struct mute_server {
  explicit mute_server(asio::io_context& io)
      : io(io), acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    asio::co_spawn(io, accept_loop(), asio::detached);
  }

  asio::io_context& io;
  tcp::acceptor acceptor;
  std::function<void()> on_bytes;
  std::size_t bytes_read = 0;

  std::string url(const std::string& scheme, const std::string& path) const {
    return scheme + "://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()) + path;
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      boost::system::error_code ec;
      auto socket = co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      asio::co_spawn(io, session(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> session(tcp::socket socket) {
    char first[512];
    boost::system::error_code ec;
    bytes_read += co_await socket.async_read_some(asio::buffer(first), asio::redirect_error(asio::use_awaitable, ec));
    if (on_bytes) on_bytes();
    co_await wait_forever(io);
  }
};

}  // namespace wf_test

#endif  // WF_TESTS_HTTP_SERVERS_HPP
