// wf's tables and their numbered migrations (see docs/journal-format.md).
#include "schema.hpp"

#include "statements.hpp"

#include <wf/postgres_store.hpp>

#include <pqxx/nontransaction>
#include <pqxx/transaction>

#include <vector>

namespace wf::detail::pg {

bool valid_identifier(std::string_view s) {
  bool ok = !s.empty() && s.size() <= 63 && (s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z'));
  for (char c : s) ok = ok && (c == '_' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));
  return ok;
}

// Appended piece by piece: at -O3, GCC 12 inlines `"\"" + std::string(s)`
// into a memcpy whose bound it cannot limit (-Wstringop-overflow, a false
// positive that broke Release builds).
std::string quoted_identifier(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '"';
  out.append(s);
  out += '"';
  return out;
}

std::string checked_schema(const std::string& name) {
  if (!valid_identifier(name))
    throw postgres_error("wf: invalid schema name '" + name +
                         "': use 1-63 characters of a-z, 0-9 and _, not starting with a digit");
  return name;
}

namespace {

// Migration N brings the schema from version N-1 to N. Never edit a released
// one: add the next. `{s}` stands for the schema name.
const std::vector<std::string>& migrations() {
  static const std::vector<std::string> all = {
      // 1: workflows and their journals.
      R"sql(
CREATE TABLE {s}.workflows (
  gid             text        PRIMARY KEY,
  name            text        NOT NULL,
  input           bytea       NOT NULL,
  status          smallint    NOT NULL DEFAULT 0,
  result          bytea       NOT NULL DEFAULT '',
  epoch           bigint      NOT NULL,
  owner           text        NOT NULL,
  lease_expires   timestamptz NOT NULL,
  attempts        integer     NOT NULL DEFAULT 0,
  last_error      text        NOT NULL DEFAULT '',
  next_attempt_at timestamptz NOT NULL,
  deadline        timestamptz,
  journal_size    integer     NOT NULL DEFAULT 0,
  created_at      timestamptz NOT NULL,
  updated_at      timestamptz NOT NULL
);
CREATE INDEX workflows_due ON {s}.workflows (next_attempt_at) WHERE status = 0;
CREATE INDEX workflows_finished ON {s}.workflows (updated_at) WHERE status <> 0;
CREATE TABLE {s}.journal (
  gid        text        NOT NULL REFERENCES {s}.workflows (gid) ON DELETE CASCADE,
  seq        integer     NOT NULL,
  kind       smallint    NOT NULL,
  name       text        NOT NULL,
  branch     integer     NOT NULL,
  failed     boolean     NOT NULL,
  payload    bytea       NOT NULL,
  epoch      bigint      NOT NULL,
  written_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (gid, seq)
);
)sql",
      // 2: operation ids (journal v2). Rows written before have no op (NULL);
      // the runtime reads them as the first journal format.
      R"sql(
ALTER TABLE {s}.journal ADD COLUMN op integer;
ALTER TABLE {s}.journal ADD COLUMN in_flight integer[];
)sql",
      // 3: commands apart from completions (an operation record may be
      // pending; completion records are a new kind). Rows written before are
      // complete operation records: false.
      R"sql(
ALTER TABLE {s}.journal ADD COLUMN pending boolean NOT NULL DEFAULT false;
)sql",
      // 4: workflows' inboxes. No foreign key: a message may be sent to a
      // workflow before it exists; purge deletes a purged workflow's. And
      // the index operators' listings use (store_admin::list: a status, and
      // a name, in gid order).
      R"sql(
CREATE TABLE {s}.inbox (
  id       bigserial   PRIMARY KEY,
  gid      text        NOT NULL,
  topic    text        NOT NULL,
  payload  bytea       NOT NULL,
  key      text        NOT NULL,
  sent_at  timestamptz NOT NULL DEFAULT now(),
  consumed boolean     NOT NULL DEFAULT false,
  UNIQUE (gid, key)
);
CREATE INDEX inbox_unconsumed ON {s}.inbox (gid, topic, id) WHERE NOT consumed;
CREATE INDEX workflows_listed ON {s}.workflows (status, name, gid);
)sql",
  };
  return all;
}

}  // namespace

int current_version(pqxx::connection& c, const std::string& name) {
  pqxx::nontransaction tx(c);
  const auto table = quoted_identifier(name) + ".schema_version";
  if (tx.exec_params("SELECT to_regclass($1) IS NULL", table)[0][0].as<bool>()) return 0;
  return tx.exec("SELECT coalesce(max(version), 0) FROM " + table)[0][0].as<int>();
}

int migrate(pqxx::connection& c, const std::string& name, int target) {
  const std::string schema = quoted_identifier(name);  // checked_schema() made it safe to quote
  static_assert(postgres_schema_version >= 1);
  if (migrations().size() != static_cast<std::size_t>(postgres_schema_version))
    throw std::logic_error("wf: migrations and postgres_schema_version disagree");
  pqxx::work tx(c);
  // One migrator at a time per schema, across processes.
  tx.exec_params("SELECT pg_advisory_xact_lock(hashtext($1))", "wf.migrate." + name);
  tx.exec("CREATE SCHEMA IF NOT EXISTS " + schema);
  tx.exec("CREATE TABLE IF NOT EXISTS " + schema +
          ".schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())");
  const auto r = tx.exec("SELECT coalesce(max(version), 0) FROM " + schema + ".schema_version");
  const int found = r[0][0].as<int>();
  if (found > postgres_schema_version)
    throw schema_too_new_error("wf: schema '" + name + "' is at version " + std::to_string(found) +
                               ", newer than this library's " + std::to_string(postgres_schema_version) +
                               "; upgrade wf (the database was left untouched)");
  if (target <= 0 || target > postgres_schema_version) target = postgres_schema_version;
  for (int v = found + 1; v <= target; ++v) {
    tx.exec(replace_all(migrations()[static_cast<std::size_t>(v - 1)], "{s}", schema));
    tx.exec_params("INSERT INTO " + schema + ".schema_version (version) VALUES ($1)", v);
  }
  tx.commit();
  return found;
}

}  // namespace wf::detail::pg
