// rhip hl7: HL7 v2 tools. `send` streams message files to an MLLP listener
// (and measures it); `replay` processes the dead letters of a data folder again.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "cli/command.h"
#include "cli/store_key_flags.h"
#include "rhip/core/log.h"
#include "rhip/fhir/rest.h"
#include "rhip/hl7/message.h"
#include "rhip/ingest/hl7_processor.h"
#include "rhip/ingest/mllp_server.h"
#include "rhip/store/store.h"

namespace rhip::cli {
namespace {

struct SendFlags {
  std::string to = "127.0.0.1:2575";
  std::vector<std::string> files;
  int connections = 1;
  double rate = 0;  // messages/s over all connections; 0 = as fast as acknowledged
  int64_t limit = 0;
  bool quiet = false;
};

struct ReplayFlags {
  std::string data;
  int limit = 100000;
  StoreKeyFlags key_flags;
};

int RunSend(const SendFlags& f) {
  const size_t colon = f.to.rfind(':');
  if (colon == std::string::npos) return Fail("hl7 send", "--to must be HOST:PORT, got '" + f.to + "'");
  const std::string host = f.to.substr(0, colon);
  const int port = std::atoi(f.to.c_str() + colon + 1);
  std::vector<std::string> texts;
  std::vector<std::string_view> messages;
  for (const auto& file : f.files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) return Fail("hl7 send", "cannot read " + file);
    std::stringstream ss;
    ss << in.rdbuf();
    texts.push_back(ss.str());
  }
  for (const auto& t : texts)
    for (auto m : hl7::SplitMessages(t)) messages.push_back(m);
  if (f.limit > 0 && static_cast<int64_t>(messages.size()) > f.limit) messages.resize(static_cast<size_t>(f.limit));
  if (messages.empty()) return Fail("hl7 send", "no HL7 messages (lines starting with MSH) in the given files");
  std::atomic<size_t> next{0};
  std::atomic<int64_t> aa{0}, ae{0}, ar{0}, failed{0};
  std::mutex mu;
  std::vector<double> latencies_ms;
  std::string first_error;
  const auto t0 = std::chrono::steady_clock::now();
  const int conns = std::max(1, f.connections);
  std::vector<std::thread> threads;
  for (int c = 0; c < conns; ++c) {
    threads.emplace_back([&, c] {
      ingest::MllpClient client;
      if (Status st = client.Connect(host, port); !st.ok()) {
        std::lock_guard lock(mu);
        if (first_error.empty()) first_error = st.ToString();
        ++failed;
        return;
      }
      std::vector<double> mine;
      int64_t sent = 0;
      const double per_conn = f.rate > 0 ? f.rate / conns : 0;
      while (true) {
        const size_t i = next.fetch_add(1);
        if (i >= messages.size()) break;
        if (per_conn > 0) {  // open-loop pacing: message k of this connection is due at k / rate
          const auto due = t0 + std::chrono::duration<double>(static_cast<double>(sent) / per_conn + c / f.rate);
          std::this_thread::sleep_until(std::chrono::time_point_cast<std::chrono::steady_clock::duration>(due));
        }
        const auto s0 = std::chrono::steady_clock::now();
        auto ack = client.Send(messages[i]);
        mine.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s0).count());
        ++sent;
        if (!ack.ok()) {
          std::lock_guard lock(mu);
          if (first_error.empty()) first_error = ack.status().ToString();
          ++failed;
          break;
        }
        const size_t msa = ack->find("\rMSA|");
        const std::string code = msa == std::string::npos ? "" : ack->substr(msa + 5, 2);
        if (code == "AA") {
          ++aa;
        } else {
          (code == "AR" ? ar : ae)++;
          std::lock_guard lock(mu);
          if (!f.quiet) std::fprintf(stderr, "%s\n", ack->substr(msa == std::string::npos ? 0 : msa + 1).c_str());
        }
      }
      std::lock_guard lock(mu);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double p) {
    return latencies_ms.empty() ? 0.0 : latencies_ms[std::min(latencies_ms.size() - 1, static_cast<size_t>(p * latencies_ms.size()))];
  };
  std::printf("sent %zu messages over %d connections in %.2f s: %.0f messages/s; AA %lld, AE %lld, AR %lld; "
              "ACK latency p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
              latencies_ms.size(), conns, secs, static_cast<double>(latencies_ms.size()) / secs,
              static_cast<long long>(aa.load()), static_cast<long long>(ae.load()), static_cast<long long>(ar.load()),
              pct(0.5), pct(0.99), latencies_ms.empty() ? 0.0 : latencies_ms.back());
  if (!first_error.empty()) return Fail("hl7 send", first_error);
  return ae + ar > 0 ? 2 : 0;
}

int RunReplay(const ReplayFlags& f) {
  log::Init("warn");
  auto key = ResolveStoreKey(f.key_flags, f.data);
  if (!key.ok()) return Fail("hl7 replay", key.status().ToString());
  auto store = store::OpenStore({.url = "sqlite:" + f.data + "/rhip.db", .create_if_missing = false, .key = *key});
  if (!store.ok()) return Fail("hl7 replay", store.status().ToString() + " (is --data a rhip data folder?)");
  auto inbox = store::OpenStore({.url = "sqlite:" + f.data + "/hl7-inbox.db", .create_if_missing = false, .key = *key});
  if (!inbox.ok()) return Fail("hl7 replay", inbox.status().ToString() + " (no HL7 message was ever received here)");
  auto svc = fhir::NewFhirService(store->get());
  ingest::Hl7Processor p(store->get(), svc.get(), {}, inbox->get());
  auto s = p.Replay(f.limit);
  if (!s.ok()) return Fail("hl7 replay", s.status().ToString());
  std::printf("replayed %lld dead letters: %lld now processed, %lld still failing\n", static_cast<long long>(s->attempted),
              static_cast<long long>(s->processed), static_cast<long long>(s->failed));
  if (s->failed > 0) {
    auto still = (*inbox)->Messages("failed", 20);
    if (still.ok())
      for (const auto& m : *still)
        std::printf("  %s %s %s: %s\n", m.sender.c_str(), m.control_id.c_str(), m.type.c_str(), m.error.c_str());
  }
  (*inbox)->Close().IgnoreError();
  Status closed = (*store)->Close();
  log::Shutdown();
  if (!closed.ok()) return Fail("hl7 replay", closed.ToString());
  return s->failed > 0 ? 2 : 0;
}

RunFn Setup(CLI::App& sub) {
  auto send = std::make_shared<SendFlags>();
  auto replay = std::make_shared<ReplayFlags>();
  sub.require_subcommand(1);
  CLI::App* s = sub.add_subcommand("send", "send HL7 v2 message files to an MLLP listener and report ACKs and speed");
  s->add_option("--to", send->to, "listener HOST:PORT");
  s->add_option("files", send->files, "files of HL7 v2 messages (each message starts on a line with MSH)")
      ->required()
      ->check(CLI::ExistingFile);
  s->add_option("--connections", send->connections, "concurrent connections")->check(CLI::Range(1, 256));
  s->add_option("--rate", send->rate, "messages per second over all connections (default: as fast as ACKed)");
  s->add_option("--limit", send->limit, "send at most this many messages");
  s->add_flag("--quiet", send->quiet, "do not print AE/AR acknowledgements");
  s->footer("Example:\n  rhip hl7 send --to 127.0.0.1:2575 --connections 8 region/hl7v2/adt.hl7 region/hl7v2/oru.hl7");
  CLI::App* r = sub.add_subcommand("replay", "process the dead letters (failed HL7 messages) of a data folder again");
  r->add_option("--data", replay->data, "data folder holding the store (rhip.db)")->required();
  r->add_option("--limit", replay->limit, "at most this many messages")->check(CLI::Range(1, 100000000));
  AddStoreKeyFlags(*r, replay->key_flags);
  r->footer("Example:\n  rhip hl7 replay --data data/demo");
  sub.footer("Example:\n  rhip hl7 send --to 127.0.0.1:2575 region/hl7v2/adt.hl7\n  rhip hl7 replay --data data/demo");
  return [send, replay, s, r] { return s->parsed() ? RunSend(*send) : RunReplay(*replay); };
}

}  // namespace

RHIP_COMMAND(hl7, "hl7", "HL7 v2 tools: send message files over MLLP, replay dead letters", Setup);

}  // namespace rhip::cli
