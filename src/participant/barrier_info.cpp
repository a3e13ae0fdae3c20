// Reading the barrier's ids from a participant's request (see
// wf/barrier_info.hpp and docs/participants.md). In the core, not in
// wf::postgres, so that a participant reads them without libpqxx.
#include "barrier_check.hpp"
#include "../text.hpp"

#include <wf/barrier_info.hpp>
#include <wf/workflow.hpp>

#include <boost/url/encoding_opts.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/parse_query.hpp>
#include <boost/url/params_view.hpp>

#include <array>
#include <optional>
#include <stdexcept>

namespace wf {
namespace {

// The fields of barrier_info, in this order, and their column widths in the
// table (DTM's, which a shared table may have been created with).
constexpr std::size_t n_fields = 4;
using field_names = std::array<const char*, n_fields>;
constexpr field_names query_names = {"trans_type", "gid", "branch_id", "op"};
constexpr field_names metadata_names = {"dtm-trans_type", "dtm-gid", "dtm-branch_id", "dtm-op"};
constexpr field_names struct_names = {"barrier_info.trans_type", "barrier_info.gid", "barrier_info.branch_id",
                                      "barrier_info.op"};
constexpr std::array<std::size_t, n_fields> max_chars = {45, 128, 128, 45};

// What wf's clients send (wf/workflow.hpp: action, rollback, commit, finish)
// and what DTM sends for TCC and sagas. DTM's "msg" is left out: its duplicate
// is an error, not a success.
constexpr std::array<std::string_view, 8> known_ops = {"action", "rollback", "commit",  "finish",
                                                       "try",    "confirm",  "cancel",  "compensate"};

[[noreturn]] void invalid(const std::string& what) { throw std::invalid_argument("wf::barrier: " + what); }

// Characters as varchar(n) counts them (the database is UTF-8; `s` is valid UTF-8).
std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

void validate(const std::array<std::string, n_fields>& v, const field_names& names, const std::string& kind) {
  for (std::size_t i = 0; i < n_fields; ++i) {
    const std::string name = kind + names[i];
    if (v[i].empty()) invalid(name + " is empty");
    // The table's columns are text in a UTF-8 database: PostgreSQL would refuse the row.
    if (const auto problem = detail::name_problem(v[i], std::string::npos); !problem.empty())
      invalid(name + " " + problem);
    if (utf8_length(v[i]) > max_chars[i])
      invalid(name + " is longer than " + std::to_string(max_chars[i]) + " characters");
  }
  const std::string& op = v[3];
  bool known = false;
  for (auto k : known_ops) known = known || op == k;
  if (!known)
    invalid(kind + names[3] + " " + detail::quoted_for_error(op) +
            " is not one of action, rollback, commit, finish, try, confirm, cancel, compensate");
}

// Collects the four fields from (name, value) pairs, whatever else comes with them.
class collector {
 public:
  collector(const field_names& names, std::string kind) : names_(names), kind_(std::move(kind)) {}

  void offer(std::string_view name, std::string value) {
    for (std::size_t i = 0; i < n_fields; ++i) {
      if (name != names_[i]) continue;
      if (found_[i] && *found_[i] != value) invalid(kind_ + names_[i] + " is given twice, with different values");
      found_[i] = std::move(value);
    }
  }

  barrier_info finish() {
    std::array<std::string, n_fields> v;
    for (std::size_t i = 0; i < n_fields; ++i) {
      if (!found_[i]) invalid(kind_ + names_[i] + " is missing");
      v[i] = std::move(*found_[i]);
    }
    validate(v, names_, kind_);
    return barrier_info{std::move(v[0]), std::move(v[1]), std::move(v[2]), std::move(v[3])};
  }

 private:
  const field_names& names_;
  std::string kind_;
  std::array<std::optional<std::string>, n_fields> found_;
};

}  // namespace

namespace detail {

void check_barrier_info(const barrier_info& info) {
  validate({info.trans_type, info.gid, info.branch_id, info.op}, struct_names, "");
}

// Appended piece by piece: at -O3, GCC 12 inlines an operator+ chain of
// std::string temporaries here into a memcpy it believes may overlap its
// source (-Wrestrict, a false positive that broke Release builds); this way
// there are no temporaries to confuse it, nor to allocate.
std::string quoted_for_error(std::string_view s) {
  constexpr std::size_t max = 48;
  std::string out;
  out.reserve(max + 5);
  out += '\'';
  out.append(s.substr(0, max));
  out.append(s.size() > max ? "...'" : "'");
  return out;
}

}  // namespace detail

barrier_info barrier_from_query(std::string_view target_or_query) {
  namespace urls = boost::urls;
  // Boost.URL 1.81's parse_query measures the query it was given with
  // strlen(), so it reads past the end of a view that is not followed by a
  // NUL (found by fuzz/barrier_fuzz.cpp). It only ever sees NUL-terminated copies.
  const std::string whole(target_or_query);
  std::string_view query = whole;
  if (!query.empty() && query.front() == '/') {
    auto target = urls::parse_origin_form(query);
    if (!target) invalid("malformed request target " + detail::quoted_for_error(target_or_query));
    query = target->encoded_query();
  } else if (query.find("://") != std::string_view::npos) {
    auto url = urls::parse_uri(query);
    if (!url) invalid("malformed URL " + detail::quoted_for_error(target_or_query));
    query = url->encoded_query();
  } else if (!query.empty() && query.front() == '?') {
    query.remove_prefix(1);
  }
  const std::string terminated(query);
  // Checked first, so that the view below cannot throw.
  if (!urls::parse_query(terminated)) invalid("malformed query " + detail::quoted_for_error(terminated));
  urls::encoding_opts form;  // '+' is a space in HTTP queries, as Go's url.Values writes them
  form.space_as_plus = true;
  collector fields(query_names, "query parameter ");
  for (const urls::param& p : urls::params_view(terminated, form)) fields.offer(p.key, p.value);
  return fields.finish();
}

barrier_info barrier_from_metadata(const std::multimap<std::string, std::string>& metadata) {
  collector fields(metadata_names, "metadata ");
  for (const auto& [key, value] : metadata) fields.offer(key, value);
  return fields.finish();
}

barrier_info barrier_info_of(const branch_context& call, std::string trans_type) {
  barrier_info info{std::move(trans_type), std::string(call.gid), std::string(call.branch_id), std::string(call.op)};
  validate({info.trans_type, info.gid, info.branch_id, info.op}, struct_names, "");
  return info;
}

}  // namespace wf
