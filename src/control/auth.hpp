// What the control server's gRPC service and its HTTP endpoints share: where
// they may listen, and bearer tokens with a read-only and an admin role.
#ifndef WF_SRC_CONTROL_AUTH_HPP
#define WF_SRC_CONTROL_AUTH_HPP

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wf::control {

/// "host:port", "[v6]:port", "host" or a bare IPv6 address, in its parts
/// (the port is empty if there is none).
struct host_port {
  std::string host, port;
};
host_port split_address(const std::string& address);
/// 127.x, ::1, localhost, or a unix: socket.
bool is_loopback(const std::string& address);

enum class role { read, admin };

enum class verdict {
  allowed,
  missing,     // no authorization
  malformed,   // not "Bearer <token>"
  unknown,     // a token that is neither
  read_only,   // a read token, where an admin one is needed
};

class tokens {
 public:
  tokens(std::vector<std::string> read, std::vector<std::string> admin)
      : read_(std::move(read)), admin_(std::move(admin)) {}

  /// Whether any token is configured (if not, everything is allowed).
  bool required() const noexcept { return !read_.empty() || !admin_.empty(); }

  /// Judges the value of an "authorization" header (nullopt: none sent).
  /// Tokens are compared in a time that does not depend on their contents.
  verdict judge(std::optional<std::string_view> authorization, role needed) const noexcept;

 private:
  std::vector<std::string> read_, admin_;
};

/// What a refusal says (for a status message or a response body).
std::string_view explain(verdict v) noexcept;

}  // namespace wf::control

#endif  // WF_SRC_CONTROL_AUTH_HPP
