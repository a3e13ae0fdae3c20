// Checks on text that wf stores in PostgreSQL `text` columns (names, error
// messages): PostgreSQL refuses NUL bytes and invalid UTF-8 there, and a write
// it refuses would be retried forever.
#ifndef WF_SRC_TEXT_HPP
#define WF_SRC_TEXT_HPP

#include <cstddef>
#include <string>
#include <string_view>

namespace wf::detail {

/// The length of the well-formed UTF-8 sequence at s[i], or 0 if there is none.
inline std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xbf;  // the allowed range of the second byte
  if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c == 0xe0) n = 3, lo = 0xa0;
  else if (c >= 0xe1 && c <= 0xec) n = 3;
  else if (c == 0xed) n = 3, hi = 0x9f;  // no surrogates
  else if (c >= 0xee && c <= 0xef) n = 3;
  else if (c == 0xf0) n = 4, lo = 0x90;
  else if (c >= 0xf1 && c <= 0xf3) n = 4;
  else if (c == 0xf4) n = 4, hi = 0x8f;
  else return 0;
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (b(i + k) < 0x80 || b(i + k) > 0xbf) return 0;
  return n;
}

/// Why `s` cannot be a name wf stores (a workflow, branch, step or value
/// name), or empty if it can: at most `max` bytes of UTF-8, no NUL.
inline std::string name_problem(std::string_view s, std::size_t max = 1024) {
  if (s.size() > max) return "longer than " + std::to_string(max) + " bytes";
  for (std::size_t i = 0; i < s.size();) {
    if (s[i] == '\0') return "contains a NUL byte";
    const auto n = utf8_sequence(s, i);
    if (n == 0) return "is not valid UTF-8 (byte " + std::to_string(i) + ")";
    i += n;
  }
  return {};
}

/// `s` made storable as text: NUL bytes become "\0" and bytes that are not
/// part of a well-formed UTF-8 sequence become "\xNN". For free text (error
/// messages), never for names (those must round-trip exactly).
inline std::string storable_text(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  static const char hex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < s.size();) {
    const auto n = utf8_sequence(s, i);
    if (s[i] == '\0') {
      out += "\\0";
      ++i;
    } else if (n == 0) {
      const auto c = static_cast<unsigned char>(s[i]);
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

/// At most the first 200 bytes of `s`, for an error message ("..." if cut).
inline std::string snippet(std::string_view s) {
  return s.size() <= 200 ? std::string(s) : std::string(s.substr(0, 200)) + "...";
}

/// "<what> of <size> bytes is over the limit of <max> bytes".
inline std::string size_problem(std::string_view what, std::size_t size, std::size_t max) {
  return std::string(what) + " of " + std::to_string(size) + " bytes is over the limit of " + std::to_string(max) +
         " bytes";
}

}  // namespace wf::detail

#endif  // WF_SRC_TEXT_HPP
