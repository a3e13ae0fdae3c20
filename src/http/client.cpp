#include "answer.hpp"

#include <wf/errors.hpp>
#include <wf/http.hpp>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include <map>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace wf::http {

namespace {

// Where a call goes: host and port (the pool's key), and the request target
// with the call's ids added to the query.
struct destination {
  std::string host;
  std::string port;
  std::string target;
  std::string key() const { return host + ":" + port; }
};

destination resolve_url(const std::string& url, const branch_context& call) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) throw std::invalid_argument("wf::http: not a URL: '" + url + "'");
  boost::urls::url u = *parsed;
  if (u.scheme() != "http") throw std::invalid_argument("wf::http: only http:// URLs are supported: '" + url + "'");
  u.params().append({"gid", call.gid});
  u.params().append({"trans_type", "workflow"});
  u.params().append({"branch_id", call.branch_id});
  u.params().append({"op", call.op});
  destination d;
  d.host = std::string(u.host());
  d.port = u.has_port() ? std::string(u.port()) : "80";
  d.target = std::string(u.encoded_target());
  if (d.target.empty() || d.target[0] != '/') d.target.insert(0, "/");
  return d;
}


}  // namespace

struct client::impl {
  impl(asio::any_io_executor e, client_options o) : ex(std::move(e)), options(o) {}

  asio::any_io_executor ex;
  client_options options;
  std::map<std::string, std::vector<std::unique_ptr<beast::tcp_stream>>> idle;
  std::size_t opened = 0;

  std::unique_ptr<beast::tcp_stream> take(const std::string& key) {
    auto it = idle.find(key);
    if (it == idle.end() || it->second.empty()) return nullptr;
    auto s = std::move(it->second.back());
    it->second.pop_back();
    return s;
  }

  void give_back(const std::string& key, std::unique_ptr<beast::tcp_stream> s) {
    auto& list = idle[key];
    if (list.size() < options.max_idle_per_host) list.push_back(std::move(s));
  }

  asio::awaitable<std::unique_ptr<beast::tcp_stream>> connect(const destination& d,
                                                               std::chrono::steady_clock::time_point deadline) {
    boost::system::error_code ec;
    tcp::resolver resolver(ex);
    auto endpoints = co_await resolver.async_resolve(d.host, d.port, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) throw transport_error("wf::http: cannot resolve " + d.key() + ": " + ec.message());
    auto s = std::make_unique<beast::tcp_stream>(ex);
    s->expires_at(deadline);
    co_await s->async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) throw transport_error("wf::http: cannot connect to " + d.key() + ": " + ec.message());
    ++opened;
    co_return s;
  }

  static asio::awaitable<std::string> post(std::shared_ptr<impl> self, destination d, std::string body) {
    const auto deadline = std::chrono::steady_clock::now() + self->options.timeout;
    for (int attempt = 0;; ++attempt) {
      auto s = self->take(d.key());
      const bool reused = s != nullptr;
      if (!s) s = co_await self->connect(d, deadline);

      bhttp::request<bhttp::string_body> req{bhttp::verb::post, d.target, 11};
      req.set(bhttp::field::host, d.host);
      req.set(bhttp::field::content_type, "application/json");
      req.keep_alive(true);
      req.body() = body;
      req.prepare_payload();

      boost::system::error_code ec;
      s->expires_at(deadline);
      co_await bhttp::async_write(*s, req, asio::redirect_error(asio::use_awaitable, ec));
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(self->options.max_response_body);
      beast::flat_buffer buffer;
      if (!ec) co_await bhttp::async_read(*s, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        // A kept-alive connection the server closed meanwhile: once more, on a new one.
        const bool stale = reused && attempt == 0 &&
                           (ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
                            ec == asio::error::connection_reset || ec == asio::error::broken_pipe);
        if (stale) continue;
        if (ec == beast::error::timeout)
          throw transport_error("wf::http: no answer from " + d.key() + " within the timeout");
        if (ec == bhttp::error::body_limit)
          throw transport_error("wf::http: answer from " + d.key() + " larger than max_response_body");
        throw transport_error("wf::http: " + d.key() + ": " + ec.message());
      }
      auto res = parser.release();
      if (res.keep_alive()) self->give_back(d.key(), std::move(s));
      co_return detail::interpret(res.result_int(), std::move(res.body()), d.key());
    }
  }
};

client::client(asio::any_io_executor executor, client_options options)
    : impl_(std::make_shared<impl>(std::move(executor), options)) {}

client::~client() = default;

asio::awaitable<std::string> client::post(const branch_context& call, std::string url, std::string body) {
  // Not a coroutine: the call's ids are read now, while `call` is alive.
  return impl::post(impl_, resolve_url(url, call), std::move(body));
}

raw_action client::action(std::string url, std::string body) {
  return [self = impl_, url = std::move(url), body = std::move(body)](const branch_context& c) {
    return impl::post(self, resolve_url(url, c), body);
  };
}

wf::handler client::handler(std::string url, std::string body) {
  return [self = impl_, url = std::move(url), body = std::move(body)](const branch_context& c) -> asio::awaitable<void> {
    co_await impl::post(self, resolve_url(url, c), body);
  };
}

std::size_t client::connections_opened() const noexcept { return impl_->opened; }

}  // namespace wf::http
