#include "answer.hpp"
#include "resolve.hpp"

#include <wf/errors.hpp>
#include <wf/http.hpp>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <map>
#include <optional>
#include <variant>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

namespace wf::http {

namespace {

// Where a URL points, checked once when an action, handler or call is made.
struct parsed_url {
  bool tls = false;
  std::string host;        // for the resolver, SNI and the certificate: no brackets, decoded
  std::string port;        // digits
  std::string host_field;  // the Host header: host[:port] as the URL has it
  boost::urls::url base;   // the URL as given: the call's ids are added to its query
  std::string where() const { return host + ":" + port; }  // for messages
  std::string pool_key() const { return (tls ? "https://" : "http://") + where(); }
};

parsed_url parse_url(const std::string& url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) throw std::invalid_argument("wf::http: not a URL: '" + url + "'");
  const boost::urls::url_view u = *parsed;
  parsed_url p;
  if (u.scheme_id() == boost::urls::scheme::https)
    p.tls = true;
  else if (u.scheme_id() != boost::urls::scheme::http)
    throw std::invalid_argument("wf::http: only http:// and https:// URLs are supported: '" + url + "'");
  if (u.has_userinfo()) {
    // Credentials are secrets: not in the message, and they go in a header.
    boost::urls::url shown = u;
    shown.remove_userinfo();
    throw std::invalid_argument("wf::http: a user or password in a URL is not supported (send it in a header): '" +
                                std::string(shown.buffer()) + "'");
  }
  if (u.host_address().empty()) throw std::invalid_argument("wf::http: no host in the URL '" + url + "'");
  p.host = u.host_address();
  p.port = p.tls ? "443" : "80";
  if (u.has_port() && !u.port().empty()) {
    const auto n = u.port().size() <= 5 ? std::stoul(std::string(u.port())) : 0;
    if (n == 0 || n > 65535) throw std::invalid_argument("wf::http: no such port in the URL '" + url + "'");
    p.port = std::to_string(n);
  }
  p.host_field = u.encoded_host_and_port();
  p.base = u;
  return p;
}

std::string target_for(const parsed_url& url, const branch_context& call) {
  boost::urls::url u = url.base;
  u.params().append({"gid", call.gid});
  u.params().append({"trans_type", "workflow"});
  u.params().append({"branch_id", call.branch_id});
  u.params().append({"op", call.op});
  std::string target(u.encoded_target());
  if (target.empty() || target[0] != '/') target.insert(0, "/");
  return target;
}

bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool has_control_char(std::string_view value) {
  return std::any_of(value.begin(), value.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

bool same_name(std::string_view a, std::string_view b) { return beast::iequals(a, b); }

// Never puts a value in the message: header values are often secrets. Nor a
// name that is not a token: it may be a value given in the wrong place.
void check_headers(const header_list& headers, const std::string& whose) {
  static constexpr std::string_view reserved[] = {"Host", "Content-Type", "Content-Length", "Transfer-Encoding",
                                                  "Connection"};
  for (std::size_t i = 0; i < headers.size(); ++i) {
    const auto& [name, value] = headers[i];
    if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char))
      throw std::invalid_argument("wf::http: " + whose + " header number " + std::to_string(i + 1) +
                                  " has a name that is not an HTTP token");
    for (auto r : reserved)
      if (same_name(name, r))
        throw std::invalid_argument("wf::http: " + whose + " headers cannot set '" + name +
                                    "': the client sets it (from the URL, the body or content_type)");
    if (has_control_char(value))
      throw std::invalid_argument("wf::http: the value of " + whose + " header '" + name +
                                  "' holds a control character (CR, LF, NUL...)");
  }
}

void check_timeout(std::chrono::milliseconds timeout, const std::string& whose) {
  if (timeout.count() <= 0) throw std::invalid_argument("wf::http: " + whose + " timeout is not positive");
}

void check_content_type(const std::string& content_type, const std::string& whose) {
  if (has_control_char(content_type))
    throw std::invalid_argument("wf::http: " + whose + " content_type holds a control character");
}

// One kept-alive connection, plain or TLS.
class connection {
 public:
  using tls_stream = ssl::stream<beast::tcp_stream>;

  explicit connection(const asio::any_io_executor& ex) : stream_(std::in_place_index<0>, ex) {}
  connection(const asio::any_io_executor& ex, ssl::context& context) : stream_(std::in_place_index<1>, ex, context) {}

  beast::tcp_stream& tcp() { return tls() ? tls()->next_layer() : std::get<0>(stream_); }
  tls_stream* tls() { return std::get_if<1>(&stream_); }

 private:
  std::variant<beast::tcp_stream, tls_stream> stream_;
};

// Sends the request and reads the answer into `parser`, on a plain or a TLS stream.
template <class Stream>
asio::awaitable<boost::system::error_code> exchange(Stream& stream, const bhttp::request<bhttp::string_body>& request,
                                                     bhttp::response_parser<bhttp::string_body>& parser) {
  boost::system::error_code ec;
  co_await bhttp::async_write(stream, request, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return ec;
  beast::flat_buffer buffer;
  co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  co_return ec;
}

// A kept-alive connection the server closed meanwhile fails in one of these ways.
bool is_stale(const boost::system::error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == ssl::error::stream_truncated;
}

// Throws for a step of a call that failed with `ec`. Only the awaiting
// coroutine's cancellation ends an operation of a call with operation_aborted
// (a deadline ends it with beast's timeout): thrown as Asio throws it. Anything
// else is a transport_error naming the step: `what`, e.g. "cannot connect to host:port".
[[noreturn]] void fail(const boost::system::error_code& ec, const std::string& what) {
  if (ec == asio::error::operation_aborted)
    throw boost::system::system_error(ec, "wf::http: " + what + ": cancelled");
  if (ec == beast::error::timeout) throw transport_error("wf::http: " + what + ": no answer within the timeout");
  if (ec == bhttp::error::body_limit) throw transport_error("wf::http: " + what + ": answer larger than max_response_body");
  throw transport_error("wf::http: " + what + ": " + ec.message());
}

// The check of the server's name, made by OpenSSL during the handshake. A
// mismatch is recorded as OpenSSL's own error, so that the message says
// "hostname mismatch" rather than a bare "certificate verify failed".
struct verify_host {
  explicit verify_host(const std::string& host) : check(host) {
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    is_address = !ec;
  }

  bool operator()(bool preverified, ssl::verify_context& context) const {
    if (check(preverified, context)) return true;
    if (preverified)
      X509_STORE_CTX_set_error(context.native_handle(),
                               is_address ? X509_V_ERR_IP_ADDRESS_MISMATCH : X509_V_ERR_HOSTNAME_MISMATCH);
    return false;
  }

  ssl::host_name_verification check;
  bool is_address = false;
};

asio::awaitable<void> discard(asio::awaitable<std::string> call) { co_await std::move(call); }

}  // namespace

// An action's or handler's URL, body and options, checked once and shared by its calls.
struct call_spec {
  parsed_url url;
  std::string body;
  call_options options;
};

struct client::impl {
  impl(asio::any_io_executor e, client_options o) : ex(std::move(e)), options(std::move(o)) {
    check_headers(options.headers, "the client's");
    check_timeout(options.timeout, "the client's");
    check_content_type(options.content_type, "the client's");
    // A CA file is read now, so that a wrong path shows when the client is made.
    if (!options.ca_file.empty()) tls_context();
  }

  asio::any_io_executor ex;
  client_options options;
  // Made at the first https call (loading the system's CAs takes tens of milliseconds, once);
  // declared before the pool, whose connections use it.
  std::optional<ssl::context> tls;
  std::map<std::string, std::vector<std::unique_ptr<connection>>> idle;
  std::size_t opened = 0;

  ssl::context& tls_context() {
    if (tls) return *tls;
    ssl::context context(ssl::context::tls_client);
    context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                        ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    context.set_verify_mode(ssl::verify_peer);
    boost::system::error_code ec;
    if (!options.ca_file.empty()) {
      context.load_verify_file(options.ca_file, ec);
      if (ec)
        throw std::invalid_argument("wf::http: cannot read the CA file '" + options.ca_file + "': " + ec.message());
    } else {
      // Without them (no CA certificates installed), every certificate fails verification, saying so.
      context.set_default_verify_paths(ec);
    }
    return tls.emplace(std::move(context));
  }

  std::shared_ptr<const call_spec> prepare(std::string url, std::string body, call_options o) const {
    check_headers(o.headers, "the call's");
    if (o.timeout) check_timeout(*o.timeout, "the call's");
    if (o.content_type) check_content_type(*o.content_type, "the call's");
    return std::make_shared<const call_spec>(call_spec{parse_url(url), std::move(body), std::move(o)});
  }

  bhttp::request<bhttp::string_body> request_for(const call_spec& spec, const branch_context& call) const {
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, target_for(spec.url, call), 11};
    for (const auto& header : options.headers) {  // (clang 14 cannot capture a structured binding)
      const bool replaced = std::any_of(spec.options.headers.begin(), spec.options.headers.end(),
                                        [&](const auto& h) { return same_name(h.first, header.first); });
      if (!replaced) req.insert(header.first, header.second);
    }
    for (const auto& [name, value] : spec.options.headers) req.insert(name, value);
    req.set(bhttp::field::host, spec.url.host_field);
    const std::string& content_type = spec.options.content_type ? *spec.options.content_type : options.content_type;
    if (!content_type.empty()) req.set(bhttp::field::content_type, content_type);
    req.keep_alive(true);
    req.body() = spec.body;
    req.prepare_payload();
    return req;
  }

  std::unique_ptr<connection> take(const std::string& key) {
    auto it = idle.find(key);
    if (it == idle.end() || it->second.empty()) return nullptr;
    auto c = std::move(it->second.back());
    it->second.pop_back();
    return c;
  }

  void give_back(const std::string& key, std::unique_ptr<connection> c) {
    auto& list = idle[key];
    if (list.size() < options.max_idle_per_host) list.push_back(std::move(c));
  }

  // Resolves, connects and, for https, makes the TLS handshake, by `deadline`.
  asio::awaitable<std::unique_ptr<connection>> open(const parsed_url& url,
                                                    std::chrono::steady_clock::time_point deadline) {
    auto resolver = std::make_shared<tcp::resolver>(ex);
    auto resolved = co_await detail::resolve_within(resolver, url.host, url.port, deadline);
    boost::system::error_code ec = resolved.first;
    if (ec) fail(ec, "cannot resolve " + url.where());

    auto c = url.tls ? std::make_unique<connection>(ex, tls_context()) : std::make_unique<connection>(ex);
    c->tcp().expires_at(deadline);
    co_await c->tcp().async_connect(resolved.second, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) fail(ec, "cannot connect to " + url.where());
    ++opened;
    if (auto* s = c->tls()) {
      // SNI names a host, never an address (RFC 6066).
      boost::system::error_code not_address;
      asio::ip::make_address(url.host, not_address);
      if (not_address && !SSL_set_tlsext_host_name(s->native_handle(), url.host.c_str()))
        throw transport_error("wf::http: cannot send the server name " + url.where() + " in the TLS handshake");
      s->set_verify_callback(verify_host(url.host));
      co_await s->async_handshake(ssl::stream_base::client, asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        // OpenSSL's own message is "certificate verify failed"; its verify result says which check failed.
        const long verified = SSL_get_verify_result(s->native_handle());
        if (verified != X509_V_OK && ec.category() == asio::error::get_ssl_category())
          throw transport_error("wf::http: TLS handshake with " + url.where() +
                                ": certificate verification failed: " + X509_verify_cert_error_string(verified));
        fail(ec, "TLS handshake with " + url.where());
      }
    }
    co_return c;
  }

  static asio::awaitable<std::string> send(std::shared_ptr<impl> self, std::shared_ptr<const call_spec> spec,
                                           bhttp::request<bhttp::string_body> request) {
    const auto deadline = std::chrono::steady_clock::now() + spec->options.timeout.value_or(self->options.timeout);
    const parsed_url& url = spec->url;
    for (int attempt = 0;; ++attempt) {
      auto c = self->take(url.pool_key());
      const bool reused = c != nullptr;
      if (!c) c = co_await self->open(url, deadline);

      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(self->options.max_response_body);
      c->tcp().expires_at(deadline);
      boost::system::error_code ec;
      if (auto* s = c->tls())
        ec = co_await exchange(*s, request, parser);
      else
        ec = co_await exchange(c->tcp(), request, parser);
      if (ec) {
        // A kept-alive connection the server closed meanwhile: once more, on a new one. The
        // other idle ones to that server are older, and likely closed too (a restart, an idle timeout).
        if (reused && attempt == 0 && is_stale(ec)) {
          self->idle.erase(url.pool_key());
          continue;
        }
        fail(ec, url.where());
      }
      auto res = parser.release();
      if (res.keep_alive()) self->give_back(url.pool_key(), std::move(c));
      co_return detail::interpret(res.result_int(), std::move(res.body()), url.where(),
                                  self->options.dtm_legacy_bodies);
    }
  }

  // Not a coroutine: the call's ids are read now, while `call` is alive.
  static asio::awaitable<std::string> post(const std::shared_ptr<impl>& self, std::shared_ptr<const call_spec> spec,
                                           const branch_context& call) {
    auto request = self->request_for(*spec, call);
    return send(self, std::move(spec), std::move(request));
  }
};

client::client(asio::any_io_executor executor, client_options options)
    : impl_(std::make_shared<impl>(std::move(executor), std::move(options))) {}

client::~client() = default;

asio::awaitable<std::string> client::post(const branch_context& call, std::string url, std::string body,
                                          call_options options) {
  return impl::post(impl_, impl_->prepare(std::move(url), std::move(body), std::move(options)), call);
}

raw_action client::action(std::string url, std::string body, call_options options) {
  auto spec = impl_->prepare(std::move(url), std::move(body), std::move(options));
  return [self = impl_, spec](const branch_context& c) { return impl::post(self, spec, c); };
}

wf::handler client::handler(std::string url, std::string body, call_options options) {
  auto spec = impl_->prepare(std::move(url), std::move(body), std::move(options));
  // Not a coroutine lambda: the call's ids are read now, and the lambda may go before its call ends.
  return [self = impl_, spec](const branch_context& c) { return discard(impl::post(self, spec, c)); };
}

std::size_t client::connections_opened() const noexcept { return impl_->opened; }

}  // namespace wf::http
