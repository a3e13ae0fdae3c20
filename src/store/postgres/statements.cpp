#include "statements.hpp"

#include "schema.hpp"
#include "../../text.hpp"

#include <wf/postgres_store.hpp>

#include <pqxx/binarystring>
#include <pqxx/field>

#include <charconv>

namespace wf::detail::pg {

namespace {

// A workflow's columns, in the order state_from_row reads them.
const char* const state_columns =
    "gid, name, input, status, result, epoch, owner, "
    "(extract(epoch FROM lease_expires) * 1000000)::bigint, attempts, last_error, "
    "(extract(epoch FROM next_attempt_at) * 1000000)::bigint, "
    "(extract(epoch FROM deadline) * 1000000)::bigint, "
    "(extract(epoch FROM created_at) * 1000000)::bigint, "
    "(extract(epoch FROM updated_at) * 1000000)::bigint";

// A journal row's columns, in the order append_records reads them.
const char* const record_columns =
    "seq, kind, name, branch, failed, payload, coalesce(op, 0), coalesce(array_to_string(in_flight, ','), ''), pending";

}  // namespace

std::string replace_all(std::string s, const std::string& key, const std::string& value) {
  for (auto pos = s.find(key); pos != std::string::npos; pos = s.find(key, pos + value.size()))
    s.replace(pos, key.size(), value);
  return s;
}

std::optional<std::uint32_t> size_before(const write& w) {
  const std::uint32_t before = w.records.empty() ? 0 : w.records.front().seq - 1;
  for (std::size_t i = 0; i < w.records.size(); ++i)
    if (w.records[i].seq != before + 1 + i) return std::nullopt;
  return before;
}

void prepare_session(pqxx::connection& c, const std::string& schema, std::chrono::milliseconds idle_in_transaction,
                     std::chrono::milliseconds lock_timeout) {
  c.set_variable("idle_in_transaction_session_timeout", std::to_string(idle_in_transaction.count()));
  c.set_variable("lock_timeout", std::to_string(lock_timeout.count()));
  auto sql = [&](std::string text) {
    auto out = replace_all(std::move(text), "{s}", quoted_identifier(schema));
    return replace_all(replace_all(std::move(out), "{cols}", state_columns), "{rcols}", record_columns);
  };
  // $5 is the lease in milliseconds; $6 the deadline in microseconds, -1 for none.
  c.prepare("wf_create_all", sql(R"(
    INSERT INTO {s}.workflows (gid, name, input, epoch, owner, lease_expires, next_attempt_at, deadline,
                               created_at, updated_at)
    SELECT c.gid, c.name, c.input, 1, c.owner, now() + c.lease_ms * interval '1 millisecond', now(),
           CASE WHEN c.deadline_us < 0 THEN NULL ELSE to_timestamp(c.deadline_us / 1000000.0) END, now(), now()
    FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::bigint[], $6::bigint[])
         AS c(gid, name, input, owner, lease_ms, deadline_us)
    ON CONFLICT (gid) DO NOTHING
    RETURNING {cols})"));
  c.prepare("wf_find_all", sql("SELECT {cols} FROM {s}.workflows WHERE gid = ANY($1::text[])"));
  // Every write of a group: fenced updates, then the records of the writes that matched.
  // Lock waits among the statements that update several workflows' rows
  // cannot form a cycle: renewals and releases never wait for a row (they
  // skip the locked ones and take each of those alone afterwards, holding
  // nothing else), so only group writes wait while holding rows. Those come
  // sorted by gid, which the update follows when it looks each one up by
  // index; two runners' groups that overlap (one of them stale) in some
  // other plan's order can still deadlock: PostgreSQL detects it and the
  // writer retries the writes one by one. (Locking the rows first, in a
  // separate step, would cost a quarter of the writer's throughput.)
  // Writes apply to unfinished workflows only: a finished one is final.
  c.prepare("wf_write_all", sql(R"(
    WITH w AS (
      SELECT * FROM unnest($1::text[], $2::bigint[], $3::integer[], $4::integer[], $5::boolean[], $6::smallint[],
                           $7::bytea[], $8::integer[], $9::text[], $10::bigint[])
        AS w(gid, epoch, n, size_before, has_progress, status, result, attempts, last_error, next_us)),
    upd AS (
      UPDATE {s}.workflows AS t SET
        journal_size = t.journal_size + w.n,
        status = CASE WHEN w.has_progress THEN w.status ELSE t.status END,
        result = CASE WHEN w.has_progress THEN w.result ELSE t.result END,
        attempts = CASE WHEN w.has_progress THEN w.attempts ELSE t.attempts END,
        last_error = CASE WHEN w.has_progress THEN w.last_error ELSE t.last_error END,
        next_attempt_at = CASE WHEN w.has_progress THEN to_timestamp(w.next_us / 1000000.0) ELSE t.next_attempt_at END,
        updated_at = now()
      FROM w
      WHERE t.gid = w.gid AND t.epoch = w.epoch AND t.status = 0
        AND (w.n = 0 OR t.journal_size = w.size_before)
      RETURNING t.gid),
    ins AS (
      INSERT INTO {s}.journal (gid, seq, kind, name, branch, failed, payload, epoch, op, in_flight, pending)
      SELECT r.gid, r.seq, r.kind, r.name, r.branch, r.failed, r.payload, r.epoch, NULLIF(r.op, 0),
             NULLIF(r.in_flight, '')::integer[], r.pending
      FROM unnest($11::text[], $12::integer[], $13::smallint[], $14::text[], $15::integer[], $16::boolean[],
                  $17::bytea[], $18::bigint[], $19::integer[], $20::text[], $21::boolean[])
           AS r(gid, seq, kind, name, branch, failed, payload, epoch, op, in_flight, pending)
      WHERE r.gid IN (SELECT gid FROM upd))
    SELECT gid FROM upd)"));
  c.prepare("wf_find", sql("SELECT {cols} FROM {s}.workflows WHERE gid = $1"));
  c.prepare("wf_journal", sql("SELECT {rcols} FROM {s}.journal WHERE gid = $1 ORDER BY seq"));
  // A write: fenced by the epoch; records must extend the journal exactly ($3 records after $4).
  c.prepare("wf_append", sql(R"(
    UPDATE {s}.workflows SET journal_size = journal_size + $3, updated_at = now()
    WHERE gid = $1 AND epoch = $2 AND status = 0 AND ($3 = 0 OR journal_size = $4))"));
  c.prepare("wf_append_progress", sql(R"(
    UPDATE {s}.workflows SET journal_size = journal_size + $3, status = $5, result = $6, attempts = $7,
                             last_error = $8, next_attempt_at = to_timestamp($9::bigint / 1000000.0),
                             updated_at = now()
    WHERE gid = $1 AND epoch = $2 AND status = 0 AND ($3 = 0 OR journal_size = $4))"));
  c.prepare("wf_record", sql(R"(
    INSERT INTO {s}.journal (gid, seq, kind, name, branch, failed, payload, epoch, op, in_flight, pending)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULLIF($9, 0), NULLIF($10, '')::integer[], $11))"));
  // Why a write was not applied: fenced (another epoch, or finished), or a conflict.
  c.prepare("wf_fence", sql("SELECT epoch, status FROM {s}.workflows WHERE gid = $1"));
  // Every claim returns the workflow's columns, then the owner it had before.
  c.prepare("wf_claim", sql(R"(
    WITH old AS (SELECT gid AS old_gid, owner AS old_owner FROM {s}.workflows WHERE gid = $1 FOR UPDATE)
    UPDATE {s}.workflows
    SET epoch = epoch + 1, owner = $2, lease_expires = now() + $3 * interval '1 millisecond', updated_at = now()
    FROM old
    WHERE gid = old.old_gid AND status = 0 AND (owner = $2 OR owner = '' OR lease_expires <= now())
    RETURNING {cols}, old.old_owner)"));
  // Claims up to $3 workflows that `which` selects, in `order`, for owner $1 with
  // a lease of $2 ms; only those named in $4 (unless $5: any name).
  // `returned_in_order`: the rows come back in `order` too. (An UPDATE's
  // RETURNING follows no order: a page of claim_resumable must, since the
  // caller asks for the next page after its last gid.)
  auto claim_sql = [&](const std::string& which, const std::string& order, bool returned_in_order) {
    return sql(R"(
    WITH picked AS (
      SELECT gid AS picked_gid, owner AS picked_owner FROM {s}.workflows
      WHERE status = 0 AND ($5 OR name = ANY($4::text[])) AND )" + which + R"(
      ORDER BY )" + order + R"( LIMIT $3
      FOR UPDATE SKIP LOCKED),
    claimed AS (
      UPDATE {s}.workflows AS w
      SET epoch = w.epoch + 1, owner = $1, lease_expires = now() + $2 * interval '1 millisecond', updated_at = now()
      FROM picked WHERE w.gid = picked.picked_gid
      RETURNING {cols}, picked.picked_owner)
    SELECT * FROM claimed)" + (returned_in_order ? " ORDER BY 1" : ""));
  };
  // Due: enqueued or released ones, and those whose lease expired (this runner's own
  // too: it stopped renewing them), once their next attempt is due.
  c.prepare("wf_claim_due",
            claim_sql("next_attempt_at <= now() AND (owner = '' OR lease_expires <= now())", "next_attempt_at", false));
  // Resumable: this runner's own, enqueued ones, and those whose lease expired;
  // a page in gid order after $6, leaving out the gids in $7 (running here).
  c.prepare("wf_claim_resumable",
            claim_sql("(owner = $1 OR owner = '' OR lease_expires <= now()) AND gid > $6 AND gid <> ALL($7::text[])",
                      "gid", true));
  c.prepare("wf_journals", sql(R"(
    SELECT {rcols}, gid FROM {s}.journal
    WHERE gid = ANY($1::text[]) ORDER BY gid, seq)"));
  // Renewals and releases take the rows no other statement holds; the
  // others, one by one, with the *_one statements (see wf_write_all).
  c.prepare("wf_renew", sql(R"(
    WITH locked AS MATERIALIZED (
      SELECT gid AS locked_gid FROM {s}.workflows
      WHERE owner = $1 AND status = 0 AND gid = ANY($2::text[]) FOR UPDATE SKIP LOCKED)
    UPDATE {s}.workflows SET lease_expires = now() + $3 * interval '1 millisecond'
    FROM locked WHERE gid = locked.locked_gid AND owner = $1 AND status = 0
    RETURNING gid)"));
  c.prepare("wf_renew_one", sql(R"(
    UPDATE {s}.workflows SET lease_expires = now() + $3 * interval '1 millisecond'
    WHERE gid = $2 AND owner = $1 AND status = 0
    RETURNING gid)"));
  c.prepare("wf_runnable", sql(R"(
    SELECT {cols} FROM {s}.workflows
    WHERE status = 0 AND (owner = $1 OR owner = '' OR lease_expires <= now())
    ORDER BY next_attempt_at LIMIT $2)"));
  c.prepare("wf_release", sql(R"(
    WITH locked AS MATERIALIZED (
      SELECT gid AS locked_gid FROM {s}.workflows
      WHERE owner = $1 AND status = 0 AND gid = ANY($2::text[]) FOR UPDATE SKIP LOCKED)
    UPDATE {s}.workflows
    SET epoch = epoch + 1, owner = '', lease_expires = now(), next_attempt_at = now(), updated_at = now()
    FROM locked WHERE gid = locked.locked_gid AND owner = $1 AND status = 0
    RETURNING gid)"));
  // A write's release until a wake-up time ($3, microseconds), right after the write applied.
  c.prepare("wf_release_write", sql(R"(
    UPDATE {s}.workflows
    SET epoch = epoch + 1, owner = '', lease_expires = now(), next_attempt_at = to_timestamp($3::bigint / 1000000.0),
        updated_at = now()
    WHERE gid = $1 AND epoch = $2 AND status = 0)"));
  c.prepare("wf_release_one", sql(R"(
    UPDATE {s}.workflows
    SET epoch = epoch + 1, owner = '', lease_expires = now(), next_attempt_at = now(), updated_at = now()
    WHERE gid = $2 AND owner = $1 AND status = 0
    RETURNING gid)"));
  // With the inboxes of the workflows purged (no foreign key there).
  c.prepare("wf_purge", sql(R"(
    WITH purged AS (
      DELETE FROM {s}.workflows WHERE gid IN (
        SELECT gid FROM {s}.workflows
        WHERE status <> 0 AND updated_at < to_timestamp($1::bigint / 1000000.0) LIMIT $2)
      RETURNING gid),
    inboxes AS (DELETE FROM {s}.inbox WHERE gid IN (SELECT gid FROM purged))
    SELECT count(*) FROM purged)"));
  // A message into an inbox ($1 gid, $2 topic, $3 payload, $4 key) unless
  // its key is there, waking its workflow if no runner holds it. Returns
  // (delivered, woken).
  c.prepare("wf_deliver", sql(R"(
    WITH sent AS (
      INSERT INTO {s}.inbox (gid, topic, payload, key) VALUES ($1, $2, $3, $4)
      ON CONFLICT (gid, key) DO NOTHING RETURNING gid),
    woken AS (
      UPDATE {s}.workflows w SET next_attempt_at = least(w.next_attempt_at, now())
      FROM sent WHERE w.gid = sent.gid AND w.status = 0 AND (w.owner = '' OR w.lease_expires <= now())
      RETURNING w.gid)
    SELECT (SELECT count(*) FROM sent), (SELECT count(*) FROM woken))"));
  c.prepare("wf_message_sent", sql("SELECT 1 FROM {s}.inbox WHERE gid = $1 AND key = $2"));
  c.prepare("wf_message_target", sql("SELECT status FROM {s}.workflows WHERE gid = $1 FOR SHARE"));
  c.prepare("wf_consume", sql(R"(
    UPDATE {s}.inbox SET consumed = true WHERE gid = $1 AND id = ANY($2::bigint[]) AND NOT consumed)"));
  c.prepare("wf_inbox", sql(R"(
    SELECT id, topic, payload, key, (extract(epoch FROM sent_at) * 1000000)::bigint FROM {s}.inbox
    WHERE gid = $1 AND topic = $2 AND NOT consumed ORDER BY id LIMIT $3)"));
  c.prepare("wf_resume", sql(R"(
    UPDATE {s}.workflows
    SET status = 0, result = '', attempts = 0, last_error = '', epoch = epoch + 1, owner = '',
        lease_expires = now(), next_attempt_at = now(), updated_at = now()
    WHERE gid = $1 AND status = 3)"));
}

std::int64_t to_us(wall_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}

wall_clock::time_point from_us(std::int64_t us) {
  return wall_clock::time_point(std::chrono::duration_cast<wall_clock::duration>(std::chrono::microseconds(us)));
}

workflow_state state_from_row(const pqxx::row& r) {
  workflow_state s;
  s.gid = r[0].as<std::string>();
  s.name = r[1].as<std::string>();
  s.input = pqxx::binarystring(r[2]).str();
  s.status = static_cast<workflow_status>(r[3].as<int>());
  s.result = pqxx::binarystring(r[4]).str();
  s.epoch = r[5].as<std::uint64_t>();
  s.owner = r[6].as<std::string>();
  s.lease_expires = from_us(r[7].as<std::int64_t>());
  s.attempts = r[8].as<std::uint32_t>();
  s.last_error = r[9].as<std::string>();
  s.next_attempt_at = from_us(r[10].as<std::int64_t>());
  if (!r[11].is_null()) s.deadline = from_us(r[11].as<std::int64_t>());
  s.created_at = from_us(r[12].as<std::int64_t>());
  s.updated_at = from_us(r[13].as<std::int64_t>());
  return s;
}

namespace {

// A packed row's payload: for each record, its kind (1 byte), op, branch
// and name length (4 bytes each, big-endian), then its name.
void put_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((v >> shift) & 0xff);
}

std::uint32_t get_u32(std::string_view in, std::size_t& at) {
  if (in.size() - at < 4) throw postgres_error("wf: a packed journal row is cut short");
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(in[at++]);
  return v;
}

bool packable(const journal_record& r) { return r.pending && r.payload.empty() && !r.failed && r.in_flight.empty(); }

}  // namespace

std::vector<journal_row> rows_of(const std::vector<journal_record>& records) {
  std::vector<journal_row> rows;
  for (std::size_t i = 0; i < records.size();) {
    std::size_t end = i;
    while (end < records.size() && packable(records[end])) ++end;
    const auto& first = records[i];
    if (end - i >= 2) {
      journal_row row{first.seq, packed_pending_kind, first.name, first.branch, false, {}, first.op, {}, true};
      for (std::size_t k = i; k < end; ++k) {
        row.payload += static_cast<char>(records[k].kind);
        put_u32(row.payload, records[k].op);
        put_u32(row.payload, records[k].branch);
        put_u32(row.payload, static_cast<std::uint32_t>(records[k].name.size()));
        row.payload += records[k].name;
      }
      rows.push_back(std::move(row));
      i = end;
      continue;
    }
    rows.push_back({first.seq, static_cast<int>(first.kind), first.name, first.branch, first.failed, first.payload,
                    first.op, ops_text(first.in_flight), first.pending});
    ++i;
  }
  return rows;
}

void append_records(const pqxx::row& r, std::vector<journal_record>& out) {
  const auto seq = r[0].as<std::uint32_t>();
  const auto kind = r[1].as<int>();
  auto payload = pqxx::binarystring(r[5]).str();
  if (kind == packed_pending_kind) {
    std::size_t at = 0;
    for (std::uint32_t k = 0; at < payload.size(); ++k) {
      journal_record j;
      j.seq = seq + k;
      j.kind = static_cast<record_kind>(static_cast<unsigned char>(payload[at++]));
      j.op = get_u32(payload, at);
      j.branch = get_u32(payload, at);
      const auto n = get_u32(payload, at);
      if (payload.size() - at < n) throw postgres_error("wf: a packed journal row is cut short");
      j.name = payload.substr(at, n);
      at += n;
      j.pending = true;
      out.push_back(std::move(j));
    }
    return;
  }
  journal_record j;
  j.seq = seq;
  j.kind = static_cast<record_kind>(kind);
  j.name = r[2].as<std::string>();
  j.branch = r[3].as<std::uint32_t>();
  j.failed = r[4].as<bool>();
  j.payload = std::move(payload);
  j.op = r[6].as<std::uint32_t>();
  j.in_flight = ops_from_text(r[7].as<std::string>());
  j.pending = r[8].as<bool>();
  out.push_back(std::move(j));
}

std::string ops_text(const std::vector<std::uint32_t>& ops) {
  if (ops.empty()) return {};
  std::string out = "{";
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ops[i]);
  }
  return out + "}";
}

std::string list_sql(const std::string& schema, const workflow_query& q, bool count, std::vector<std::string>& params) {
  params.clear();
  std::string where;
  // `predicate` with its value's placeholder written "?".
  auto filter = [&](const std::string& predicate, std::string value) {
    params.push_back(std::move(value));
    where += (where.empty() ? " WHERE " : " AND ") + replace_all(predicate, "?", "$" + std::to_string(params.size()));
  };
  if (q.name) filter("name = ?", *q.name);
  if (q.status) filter("status = ?::smallint", std::to_string(static_cast<int>(*q.status)));
  if (q.owner) filter("owner = ?", *q.owner);
  if (q.created_from) filter("created_at >= to_timestamp(?::bigint / 1000000.0)", std::to_string(to_us(*q.created_from)));
  if (q.created_until) filter("created_at < to_timestamp(?::bigint / 1000000.0)", std::to_string(to_us(*q.created_until)));
  const auto table = quoted_identifier(schema) + ".workflows";
  if (count) return "SELECT count(*) FROM " + table + where;
  if (!q.after.empty()) filter("gid > ?", q.after);
  return "SELECT " + std::string(state_columns) + " FROM " + table + where + " ORDER BY gid LIMIT " +
         std::to_string(q.limit + 1);
}

std::vector<std::uint32_t> ops_from_text(const std::string& text) {
  std::vector<std::uint32_t> out;
  std::uint32_t n = 0;
  bool digits = false;
  for (char ch : text) {
    if (ch >= '0' && ch <= '9') {
      n = n * 10 + static_cast<std::uint32_t>(ch - '0');
      digits = true;
    } else if (digits) {
      out.push_back(n);
      n = 0;
      digits = false;
    }
  }
  if (digits) out.push_back(n);
  return out;
}

void array_text::open() {
  s_.pop_back();  // the closing brace
  if (s_.size() > 1) s_ += ',';
}

void array_text::add(std::string_view text) {
  open();
  s_ += '"';
  for (char ch : text) {
    if (ch == '"' || ch == '\\') s_ += '\\';
    s_ += ch;
  }
  s_ += "\"}";
}

void array_text::add_bytea(std::string_view bytes) {
  static const char digits[] = "0123456789abcdef";
  open();
  s_ += "\"\\\\x";  // "\\x: bytea's \x, its backslash escaped for the array
  for (unsigned char ch : bytes) {
    s_ += digits[ch >> 4];
    s_ += digits[ch & 15];
  }
  s_ += "\"}";
}

void array_text::add(std::uint64_t n) {
  open();
  char buf[24];
  const auto end = std::to_chars(buf, buf + sizeof buf, n).ptr;
  s_.append(buf, end);
  s_ += '}';
}

std::string text_array(const std::vector<std::string>& values) {
  array_text a;
  for (const auto& v : values) a.add(v);
  return a.str();
}

bool batch::add(const write& w) {
  const auto before = size_before(w);
  if (!before) return false;
  empty_ = false;
  gid_.add(w.gid);
  epoch_.add(w.epoch);
  n_.add(w.records.size());
  size_before_.add(*before);
  has_progress_.add(w.new_progress ? "t" : "f");
  static const progress none;
  const progress& p = w.new_progress ? *w.new_progress : none;
  status_.add(static_cast<std::uint64_t>(p.status));
  result_.add_bytea(p.result);
  attempts_.add(p.attempts);
  last_error_.add(detail::storable_text(p.last_error));
  next_us_.add(std::to_string(to_us(p.next_attempt_at)));  // may be negative
  for (const auto& r : rows_of(w.records)) {
    r_gid_.add(w.gid);
    r_seq_.add(r.seq);
    r_kind_.add(std::to_string(r.kind));  // may be negative
    r_name_.add(r.name);
    r_branch_.add(r.branch);
    r_failed_.add(r.failed ? "t" : "f");
    r_payload_.add_bytea(r.payload);
    r_epoch_.add(w.epoch);
    r_op_.add(r.op);
    r_in_flight_.add(r.in_flight);
    r_pending_.add(r.pending ? "t" : "f");
  }
  return true;
}

pqxx::result batch::execute(pqxx::transaction_base& tx) const {
  return tx.exec_prepared("wf_write_all", gid_.str(), epoch_.str(), n_.str(), size_before_.str(), has_progress_.str(),
                          status_.str(), result_.str(), attempts_.str(), last_error_.str(), next_us_.str(),
                          r_gid_.str(), r_seq_.str(), r_kind_.str(), r_name_.str(), r_branch_.str(), r_failed_.str(),
                          r_payload_.str(), r_epoch_.str(), r_op_.str(), r_in_flight_.str(),
                          r_pending_.str());
}

}  // namespace wf::detail::pg
