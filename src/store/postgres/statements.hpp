// The SQL wf runs, as prepared statements, and the conversions around them.
#ifndef WF_SRC_STORE_POSTGRES_STATEMENTS_HPP
#define WF_SRC_STORE_POSTGRES_STATEMENTS_HPP

#include <wf/journal.hpp>
#include <wf/store.hpp>

#include <pqxx/connection>
#include <pqxx/result>
#include <pqxx/row>
#include <pqxx/transaction>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wf::detail::pg {

/// `s` with every `key` replaced by `value`.
std::string replace_all(std::string s, const std::string& key, const std::string& value);

/// The LISTEN/NOTIFY channel that announces new work for the store in `schema`.
inline std::string work_channel(const std::string& schema) { return schema + "_work"; }

/// The journal size `w` expects before it (its first record's seq - 1), or
/// nothing if its records' seqs are not consecutive.
std::optional<std::uint32_t> size_before(const write& w);

/// Session settings, then every statement below prepared on `c`, for tables in `schema`.
void prepare_session(pqxx::connection& c, const std::string& schema, std::chrono::milliseconds idle_in_transaction,
                     std::chrono::milliseconds lock_timeout);

/// Microseconds since the epoch, as stored.
std::int64_t to_us(wall_clock::time_point t);
wall_clock::time_point from_us(std::int64_t us);

/// A row of the statements that return a workflow's columns.
workflow_state state_from_row(const pqxx::row& r);
/// A journal row as stored. Mostly one record; but a run of two or more
/// pending operation records of one write (the commands a write carries for
/// the operations in flight) is packed into one row of kind
/// `packed_pending_kind`, whose payload holds each one's kind, op, branch
/// and name, and whose seq is the first one's: one row instead of many
/// (see docs/journal-format.md, "Packed commands"). Reading unpacks it.
struct journal_row {
  std::uint32_t seq = 0;
  int kind = 0;
  std::string name;
  std::uint32_t branch = 0;
  bool failed = false;
  std::string payload;
  std::uint32_t op = 0;
  std::string in_flight;  // ops_text
  bool pending = false;
};
inline constexpr int packed_pending_kind = -1;
/// The rows that store `records` (consecutive records of one write).
std::vector<journal_row> rows_of(const std::vector<journal_record>& records);

/// A row of `wf_journal`: appends its record, or the records packed in it.
void append_records(const pqxx::row& r, std::vector<journal_record>& out);
// How many columns append_records reads (a query may select more after them).
inline constexpr int record_column_count = 9;

/// Operation ids as an array literal ("{3,4}"), empty for none; and back
/// from the comma-separated text the statements return.
std::string ops_text(const std::vector<std::uint32_t>& ops);

/// The statement of `store_admin::list` for `q` in `schema`, with only the
/// filters `q` gives; their values go to `params` ($1, $2, ...), never into
/// the text. `count`: the count of every match instead of a page (which asks
/// for one row more than the limit, to know whether another page follows).
std::string list_sql(const std::string& schema, const workflow_query& q, bool count, std::vector<std::string>& params);
std::vector<std::uint32_t> ops_from_text(const std::string& text);

/// A PostgreSQL array literal, built one element at a time and always
/// complete ("{}", then "{\"a\"}", "{\"a\",\"b\"}"...): every element quoted,
/// `"` and `\` escaped. Elements are written straight into the literal.
class array_text {
 public:
  void add(std::string_view text);
  /// Bytes in bytea's hex input form (\x4142), written as hex digits
  /// directly (no intermediate string).
  void add_bytea(std::string_view bytes);
  void add(std::uint64_t n);
  const std::string& str() const noexcept { return s_; }

 private:
  void open();  // makes room for the next element
  std::string s_ = "{}";
};

/// A PostgreSQL array literal of text values: {"a","b\"c"}.
std::string text_array(const std::vector<std::string>& values);


/// Many journal writes as one statement (`wf_write_all`): the workflows'
/// rows are updated (fenced by epoch and journal size) and the records of
/// the writes that matched inserted, all in one round trip.
class batch {
 public:
  /// Adds `w`; false (and nothing added) if its records' seqs are not consecutive.
  bool add(const write& w);
  bool empty() const noexcept { return empty_; }
  /// Runs it; returns one row per applied write: its gid.
  pqxx::result execute(pqxx::transaction_base& tx) const;

 private:
  // Per write (the array literals the statement takes, built as writes are added).
  array_text gid_, epoch_, n_, size_before_, has_progress_, status_, result_, attempts_, last_error_, next_us_;
  // Per record.
  array_text r_gid_, r_seq_, r_kind_, r_name_, r_branch_, r_failed_, r_payload_, r_epoch_, r_op_, r_in_flight_, r_pending_;
  bool empty_ = true;
};

}  // namespace wf::detail::pg

#endif  // WF_SRC_STORE_POSTGRES_STATEMENTS_HPP
