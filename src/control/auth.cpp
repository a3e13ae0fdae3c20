// Where the control server may listen, and its bearer tokens (control/auth.hpp).
#include "control/auth.hpp"

namespace wf::control {

host_port split_address(const std::string& address) {
  if (!address.empty() && address.front() == '[') {
    const auto close = address.find(']');
    if (close == std::string::npos) return {address, {}};
    const bool port = address.compare(close + 1, 1, ":") == 0;
    return {address.substr(1, close - 1), port ? address.substr(close + 2) : std::string{}};
  }
  const auto colon = address.rfind(':');
  if (colon != std::string::npos && address.find(':') == colon)
    return {address.substr(0, colon), address.substr(colon + 1)};
  return {address, {}};  // no port, or a bare IPv6 address
}

bool is_loopback(const std::string& address) {
  if (address.rfind("unix:", 0) == 0) return true;  // a local socket
  const auto host = split_address(address).host;
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

namespace {

// Equal, in a time that does not depend on where the first difference is.
bool same_token(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

bool known(const std::vector<std::string>& tokens, std::string_view t) noexcept {
  bool found = false;
  for (const auto& k : tokens) found = same_token(k, t) || found;  // (all compared, whatever matches)
  return found;
}

}  // namespace

verdict tokens::judge(std::optional<std::string_view> authorization, role needed) const noexcept {
  if (!required()) return verdict::allowed;
  if (!authorization) return verdict::missing;
  constexpr std::string_view scheme = "Bearer ";
  if (authorization->substr(0, scheme.size()) != scheme) return verdict::malformed;
  const auto token = authorization->substr(scheme.size());
  if (known(admin_, token)) return verdict::allowed;
  if (known(read_, token)) return needed == role::read ? verdict::allowed : verdict::read_only;
  return verdict::unknown;
}

std::string_view explain(verdict v) noexcept {
  switch (v) {
    case verdict::allowed: return "allowed";
    case verdict::missing: return "a token is needed (authorization: Bearer <token>)";
    case verdict::malformed: return "the authorization is not 'Bearer <token>'";
    case verdict::unknown: return "an unknown token";
    case verdict::read_only: return "a read-only token cannot change workflows";
  }
  return "refused";
}

}  // namespace wf::control
