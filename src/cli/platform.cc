#include "cli/platform.h"

#include <algorithm>
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "rhip/core/log.h"
#include "rhip/core/url.h"
#include "rhip/fhir/rest.h"
#include "rhip/http/serve.h"
#include "rhip/ingest/bulk_data.h"
#include "rhip/ingest/hl7_processor.h"
#include "rhip/ingest/mllp_server.h"
#include "rhip/mpi/empi_service.h"
#include "rhip/security/gate.h"

namespace rhip::cli {

void AddPlatformFlags(CLI::App& sub, PlatformFlags& f) {
  sub.add_option("--port", f.port, "TCP port (0 = any free port)")->check(CLI::Range(0, 65535));
  sub.add_option("--bind", f.bind, "address to listen on");
  sub.add_option("--threads", f.threads, "I/O threads, each serving its own connections (default: one per core, at least 2)")->check(CLI::Range(0, 256));
  sub.add_option("--static", f.static_dir, "folder of the web UI's built files")->check(CLI::ExistingDirectory);
  sub.add_option("--mllp-port", f.mllp_port, "also take HL7 v2 messages over MLLP on this port (0 = any free port)")
      ->check(CLI::Range(0, 65535));
  sub.add_option("--hl7-appliers", f.hl7_appliers,
                 "background threads applying accepted HL7 messages, each up to 32 per store commit (more: faster catch-up, slower ACKs)")
      ->check(CLI::Range(1, 64));
  sub.add_option("--rate-limit", f.rate_limit, "requests per second per client (token subject), bursts of twice that; 0 = none")
      ->check(CLI::Range(0.0, 1e7));
  sub.add_option("--cors-origin", f.cors_origins, "a browser origin allowed to call the API cross-origin (repeatable; none by default)");
  sub.add_option("--tls-cert", f.tls_cert,
                 "PEM certificate chain: serve HTTPS (TLS 1.2+) instead of HTTP, and MLLP over TLS instead of plain TCP")
      ->check(CLI::ExistingFile);
  sub.add_option("--tls-key", f.tls_key, "PEM private key of --tls-cert")->check(CLI::ExistingFile);
  sub.add_option("--audit-anchor", f.audit_anchor,
                 "append the audit chain's head (SEQ HASH INSTANT) to this file, outside the data folder ideally "
                 "(another disk, an append-only mount, a shipped log): rhip audit verify --anchor FILE then detects "
                 "records cut off the end");
  sub.add_option("--audit-anchor-interval", f.audit_anchor_interval, "seconds between anchors (default 60; also at a stop)")
      ->check(CLI::Range(0.0, 86400.0));
  sub.add_option("--mllp-client-ca", f.mllp_client_ca,
                 "PEM CA certificate(s): MLLP clients must present a certificate it issued, whose subject CN is "
                 "their institution code (MSH-4); needs --tls-cert/--tls-key")
      ->check(CLI::ExistingFile);
  sub.add_flag("--insecure-dev", f.insecure_dev,
               "DEVELOPMENT ONLY: serve without tokens, every caller is treated as admin");
  AddStoreKeyFlags(sub, f.key_flags);
}

int RunPlatform(const std::string& command, const PlatformFlags& f, store::Store* store) {
  // The EMPI: every Patient (REST and HL7) linked to one Person; Patient/$match and $ihe-pix;
  // Patient?identifier= across institutions; stewardship under /api/mpi. Other layers that
  // reason about "the same resident" take empi.directory() (mpi::PersonDirectory).
  mpi::EmpiService empi(store);
  if (Status st = empi.Load(); !st.ok()) return Fail(command, st.ToString());
  // Security: token keys (DATA/keys), accounts (DATA/accounts.json), the facts of
  // authorization (care relationships; who is whom from the EMPI) and the audit log.
  auto gate = security::Gate::Open(
      {.data_dir = f.data, .store = store, .persons = &empi.directory(), .store_key = f.store_key,
       .rate_limit = {.rate = f.rate_limit, .burst = 2 * f.rate_limit},
       .audit_anchor = f.audit_anchor,
       .audit_anchor_interval = std::chrono::milliseconds(static_cast<int64_t>(f.audit_anchor_interval * 1000))});
  if (!gate.ok()) return Fail(command, gate.status().ToString());
  if (f.insecure_dev) {
    std::fprintf(stderr,
                 "\n*** WARNING: SECURITY IS OFF (--insecure-dev) ***\n"
                 "*** no token is checked, every caller is treated as admin; never use this with real data ***\n\n");
    log::Warn("security=off insecure_dev=true every caller is admin");
  }
  auto on_written = [&empi, g = gate->get()](const store::ResourceVersion& v) {
    empi.OnWritten(v);
    g->OnWritten(v);
  };
  auto fhir_options = [&](fhir::FhirServiceOptions& fo) {
    fo.on_written = on_written;
    fo.expand_search = [&empi](store::SearchQuery& q) { return empi.ExpandSearch(q); };
    fo.managed_types = {{"Person", "the EMPI keeps them; use /api/mpi/link, unlink, merge, unmerge and review"}};
  };
  // HL7 v2 over MLLP beside the HTTP API, on the same store. MLLP carries no
  // tokens: without client certificates the listener is trusted by its network
  // placement (bind it to the institutions' network only); with
  // --mllp-client-ca each connection proves its institution (docs/SECURITY.md).
  std::unique_ptr<fhir::FhirService> hl7_fhir;
  std::unique_ptr<ingest::Hl7Processor> hl7;
  std::unique_ptr<ingest::MllpServer> mllp;
  std::unique_ptr<store::Store> inbox;
  if (f.mllp_port >= 0) {
    auto opened = store::OpenStore({.url = "sqlite:" + f.data + "/hl7-inbox.db", .read_connections = 4,
                                    .key = f.store_key, .name = "inbox"});
    if (!opened.ok()) return Fail(command, opened.status().ToString());
    inbox = std::move(*opened);
    fhir::FhirServiceOptions hl7_options;
    fhir_options(hl7_options);
    // The appliers run in the background after the ACK: they need not wait for the Person write.
    hl7_options.on_written = [&empi](const store::ResourceVersion& v) { empi.OnWritten(v, /*wait_for_person_write=*/false); };
    hl7_fhir = fhir::NewFhirService(store, hl7_options);
    hl7 = std::make_unique<ingest::Hl7Processor>(store, hl7_fhir.get(),
                                                 ingest::Hl7ProcessorOptions{.appliers = f.hl7_appliers}, inbox.get());
    if (Status st = hl7->Start(); !st.ok()) return Fail(command, st.ToString());
    if (!f.mllp_client_ca.empty() && f.tls_cert.empty())
      return Fail(command, "--mllp-client-ca needs --tls-cert and --tls-key (client certificates are checked in TLS)");
    ingest::MllpOptions mo;
    mo.bind = f.bind;
    mo.port = f.mllp_port;
    mo.tls_cert = f.tls_cert;
    mo.tls_key = f.tls_key;
    mo.tls_client_ca = f.mllp_client_ca;
    mllp = std::make_unique<ingest::MllpServer>(mo, [p = hl7.get()](std::string_view m, const ingest::MllpPeer& peer) {
      return p->Process(m, peer.certificate_cn);
    });
    if (Status st = mllp->Start(); !st.ok()) return Fail(command, st.ToString());
    std::printf("rhip mllp listening on %s:%d%s\n", f.bind.c_str(), mllp->port(),
                f.tls_cert.empty() ? "" : f.mllp_client_ca.empty() ? " (TLS)" : " (TLS, client certificates)");
  }
  // FHIR Bulk Data ($export, $import) under DATA/bulk; $import reads server-side files only from DATA/import.
  ingest::BulkData bulk(store, {.dir = f.data + "/bulk",
                               .import_root = f.data + "/import",
                               .on_written = [&empi](const std::vector<store::ResourceVersion>& batch) { empi.OnWrittenBatch(batch); }});
  http::ServeOptions o;
  o.fhir.operations = bulk.Operations();
  o.fhir.operations.push_back(empi.MatchOperation());
  o.fhir.operations.push_back(empi.PixOperation());
  fhir_options(o.fhir);
  // Stewardship (JSON): GET /api/mpi/review, POST /api/mpi/review/{id}, link, unlink, merge, unmerge, persons/{id}[/trail].
  o.extra_routes.push_back({"", "/api/mpi", [&empi](const http::HttpRequest& req) {
                              fhir::RestRequest r;
                              r.method = req.method;
                              r.path = PercentDecode(std::string_view(req.path).substr(std::min<size_t>(req.path.size(), 8)));
                              r.query = ParseQueryString(req.query);
                              r.headers = req.headers;
                              r.body = req.body;
                              fhir::RestResponse out = empi.HandleApi(r);
                              http::HttpResponse h;
                              h.status = out.status;
                              h.content_type = out.content_type;
                              h.body = std::move(out.body);
                              return h;
                            }});
  if (hl7) {
    // The HL7 queue, for operators and tests: accepted but not yet applied, applied, dead letters.
    o.extra_routes.push_back({"GET", "/api/hl7/status", [p = hl7.get()](const http::HttpRequest&) {
                                const ingest::Hl7Stats s = p->Stats();
                                return http::HttpResponse::Json(
                                    200, "{\"queued\":" + std::to_string(s.queued) + ",\"processed\":" +
                                             std::to_string(s.processed) + ",\"failed\":" + std::to_string(s.failed) + "}");
                              }});
  }
  o.gate = gate->get();
  o.insecure_dev = f.insecure_dev;
  o.cors_origins = f.cors_origins;
  o.server.tls_cert = f.tls_cert;
  o.server.tls_key = f.tls_key;
  o.server.bind = f.bind;
  o.server.port = f.port;
  o.server.threads = f.threads;
  o.static_dir = f.static_dir;
  Status st = http::Serve(o, *store, [&](int port) {
    const char* scheme = f.tls_cert.empty() ? "http" : "https";
    std::printf("rhip serving %s://%s:%d/fhir (data: %s)\n", scheme, f.bind.c_str(), port, f.data.c_str());
    std::printf("  try: curl %s://%s:%d/fhir/metadata\n", scheme, f.bind.c_str(), port);
    if (!f.insecure_dev)
      std::printf("  API calls need a token: rhip token --data %s --role admin | tail -1\n", f.data.c_str());
    else
      std::printf("  SECURITY IS OFF (--insecure-dev): every caller is admin\n");
    std::fflush(stdout);
  });
  if (mllp) mllp->Stop();  // ACKs in hand go out before the store closes
  if (hl7) hl7->Stop();    // what is still queued stays in the store and is applied on the next start
  empi.Stop();             // Patients written from here on are linked at the next start
  if (inbox) inbox->Close().IgnoreError();
  Status closed = store->Close();
  if (!st.ok()) return Fail(command, st.ToString());
  if (!closed.ok()) return Fail(command, closed.ToString());
  log::Info("stopped; store closed cleanly");
  log::Shutdown();
  return 0;
}

}  // namespace rhip::cli
