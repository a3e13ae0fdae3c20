// wf-server: the control API (proto/wf/control.proto) for a wf database, as
// a process of its own, for operators whose services do not embed
// wf::control_server.
//
//   wf-server --db URL [--schema wf] [--listen 127.0.0.1:7233]
//             [--tls-cert PEM --tls-key PEM]
//   tokens: WF_ADMIN_TOKENS and WF_READ_TOKENS, comma-separated (the
//   environment, not the command line, which other users can see)
//
// It opens the store without migrating it (the services own their schema's
// version) and serves until SIGINT or SIGTERM. It prints "listening on
// HOST:PORT" once it serves. Exit status: 0 stopped by a signal, 1 an error,
// 2 a usage error. See docs/operations.md, "wf-server".
#include <wf/control.hpp>
#include <wf/postgres_store.hpp>

#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::vector<std::string> tokens_from(const char* variable) {
  std::vector<std::string> out;
  const char* value = std::getenv(variable);
  if (!value) return out;
  std::stringstream all(value);
  std::string t;
  while (std::getline(all, t, ','))
    if (!t.empty()) out.push_back(t);
  return out;
}

std::string file_text(const std::string& path, const char* what) {
  std::ifstream f(path);
  if (!f) throw std::invalid_argument(std::string("cannot read ") + what + " '" + path + "'");
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"wf-server: the wf control API for a wf database"};
  std::string db, schema = "wf", listen = "127.0.0.1:7233", cert, key;
  app.add_option("--db", db, "PostgreSQL connection string (or set WF_DB)")->envname("WF_DB")->required();
  app.add_option("--schema", schema, "the services' wf schema")->capture_default_str();
  app.add_option("--listen", listen, "host:port; an address other than loopback needs tokens and TLS")
      ->capture_default_str();
  app.add_option("--tls-cert", cert, "TLS: the certificate chain, a PEM file");
  app.add_option("--tls-key", key, "TLS: the private key, a PEM file");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  // Blocked before any thread starts, so that every thread inherits the mask
  // and sigwait below is the one to take them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  try {
    wf::control_options o;
    o.address = listen;
    o.admin_tokens = tokens_from("WF_ADMIN_TOKENS");
    o.read_tokens = tokens_from("WF_READ_TOKENS");
    if (!cert.empty()) o.tls_certificate_chain = file_text(cert, "--tls-cert");
    if (!key.empty()) o.tls_private_key = file_text(key, "--tls-key");
    wf::postgres_options p;
    p.connection = db;
    p.schema = schema;
    p.migrate = false;
    auto store = wf::postgres_store::open(p);
    wf::control_server server(store, o);
    const auto colon = listen.rfind(':');
    std::cout << "listening on " << listen.substr(0, colon) << ":" << server.port() << std::endl;
    int sig = 0;
    sigwait(&stop, &sig);
    std::cout << "stopping (signal " << sig << ")" << std::endl;
    return 0;
  } catch (const std::invalid_argument& e) {
    std::cerr << "wf-server: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "wf-server: " << e.what() << "\n";
    return 1;
  }
}
