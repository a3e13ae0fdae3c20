// For the tests that look into PostgreSQL directly.
#ifndef WF_TESTS_STORE_PG_SUPPORT_HPP
#define WF_TESTS_STORE_PG_SUPPORT_HPP

#include "support.hpp"

#include <pqxx/pqxx>

namespace wf_test {

/// The version of wf's schema `schema`, as its schema_version table says.
inline int schema_version(const std::string& schema) {
  pqxx::connection c(pg_url());
  pqxx::nontransaction tx(c);
  return tx.exec("SELECT max(version) FROM \"" + schema + "\".schema_version")[0][0].as<int>();
}

}  // namespace wf_test

#endif  // WF_TESTS_STORE_PG_SUPPORT_HPP
