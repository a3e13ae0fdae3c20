// wf/codec.hpp - turning typed values into the bytes wf journals, and back.
//
// Inputs, results, branch results and recorded values travel and are stored
// as bytes (`std::string`). A `wf::codec<T>` says how a `T` becomes bytes:
// provided here for `std::string` (as is), `void`, arithmetic types (decimal
// text) and `bool`. `wf/json.hpp` adds `boost::json::value` (serialized JSON)
// and `wf/protobuf.hpp` every Protobuf message type, each with its own target
// (`wf::json`, `wf::protobuf`), so that the core headers need neither library.
// Specialise `wf::codec` for your own types:
//
//     template <> struct wf::codec<my_type> {
//       static std::string encode(const my_type&);
//       static my_type decode(std::string_view bytes);  // throws wf::decode_error
//     };
#ifndef WF_CODEC_HPP
#define WF_CODEC_HPP

#include <wf/errors.hpp>

#include <charconv>
#include <concepts>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace wf {

namespace detail {
template <class T>
inline constexpr bool no_codec = false;  // dependent, so that the assertion fires only when used
}  // namespace detail

// Only reached for a type nobody gave a codec: says what to do, rather than
// leaving the user with "incomplete type" deep inside the runtime's templates.
template <class T, class Enable = void>
struct codec {
  static_assert(detail::no_codec<T>,
                "wf: no wf::codec<T> for this type: include <wf/json.hpp> (boost::json::value) or "
                "<wf/protobuf.hpp> (Protobuf messages), or specialise wf::codec<T> (see wf/codec.hpp)");
  // Declared only, so that the assertion is the one error a user sees.
  static std::string encode(const T&);
  static T decode(std::string_view);
};

/// Whether `T` has a codec (checked where a type is journaled, so that a
/// missing one is a clear compile error).
template <class T>
concept codec_available = requires(const T& v, std::string_view b) {
  { codec<T>::encode(v) } -> std::convertible_to<std::string>;
  { codec<T>::decode(b) } -> std::convertible_to<T>;
};

template <>
struct codec<std::string> {
  static std::string encode(const std::string& v) { return v; }
  static std::string decode(std::string_view b) { return std::string(b); }
};

template <class T>
struct codec<T, std::enable_if_t<std::is_arithmetic_v<T> && !std::is_same_v<T, bool>>> {
  static std::string encode(T v) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
  }
  static T decode(std::string_view b) {
    T v{};
    auto r = std::from_chars(b.data(), b.data() + b.size(), v);
    if (r.ec != std::errc{} || r.ptr != b.data() + b.size())
      throw decode_error("wf::codec: not a number: '" + std::string(b.substr(0, 64)) + "'");
    return v;
  }
};

template <>
struct codec<bool> {
  static std::string encode(bool v) { return v ? "true" : "false"; }
  static bool decode(std::string_view b) {
    if (b == "true") return true;
    if (b == "false") return false;
    throw decode_error("wf::codec: not a bool: '" + std::string(b.substr(0, 64)) + "'");
  }
};

/// Bytes of a value, with its codec.
template <class T>
std::string encode(const T& v) {
  return codec<T>::encode(v);
}

/// A value from its bytes, with its codec. Throws `wf::decode_error`.
template <class T>
T decode(std::string_view bytes) {
  return codec<T>::decode(bytes);
}

}  // namespace wf

#endif  // WF_CODEC_HPP
