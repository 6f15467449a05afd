#include "rhip/testing/test_cert.h"
#include "rhip/ingest/hl7_processor.h"

#include <gtest/gtest.h>

#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "rhip/fhir/json.h"
#include "rhip/ingest/mllp_server.h"

namespace rhip::ingest {
namespace {

const std::string kAdt =
    "MSH|^~\\&|HIS|330402-H01|RHIP|330400|20240105083000||ADT^A04^ADT_A01|CTRL-1|P|2.5|||||CHN|UNICODE UTF-8\r"
    "PID|1||MR001^^^330402-H01^MR~330402198001011234^^^^NNCHN||张^伟||19800101|M|||新丰镇1号^^^^^^^^330402||13812345678\r"
    "PV1|1|O|||||||||||||||||V1|||||||||||||||||||||||||20240105083000\r";

class ProcessorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::OpenStore({.url = "sqlite::memory:", .read_connections = 2});
    ASSERT_TRUE(s.ok());
    store_ = std::move(*s);
    fhir_ = fhir::NewFhirService(store_.get());
    processor_ = std::make_unique<Hl7Processor>(store_.get(), fhir_.get());
    ASSERT_TRUE(processor_->Start().ok());
  }
  void TearDown() override { processor_.reset(); }
  std::string ProcessAndApply(const std::string& msg) {
    std::string ack = processor_->Process(msg);
    EXPECT_TRUE(processor_->WaitIdle(30));
    return ack;
  }
  fhir::Json Search(const std::string& type, const std::string& param, const std::string& value) {
    fhir::RestRequest r;
    r.method = "GET";
    r.path = type;
    r.query = {{param, value}, {"_total", "accurate"}};
    r.base_url = "http://x/fhir";
    auto resp = fhir_->Handle(r);
    auto doc = fhir::ParseJson(resp.body);
    EXPECT_TRUE(doc.ok());
    return std::move(*doc);
  }
  // Patient/dup-a and Patient/dup-b, both filed under kAdt's MRN.
  void TwoPatientsShareTheMrn() {
    for (const char* id : {"dup-a", "dup-b"}) {
      fhir::RestRequest put;
      put.method = "PUT";
      put.path = std::string("Patient/") + id;
      put.base_url = "http://x/fhir";
      put.body = std::string(R"({"resourceType":"Patient","id":")") + id +
                 R"(","identifier":[{"system":"http://rhip.health/id/mrn/330402-H01","value":"MR001"}]})";
      ASSERT_EQ(fhir_->Handle(put).status, 201);
    }
  }
  static std::string Msa(const std::string& ack) {
    size_t p = ack.find("\rMSA|");
    return p == std::string::npos ? "" : ack.substr(p + 5, 2);
  }
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<fhir::FhirService> fhir_;
  std::unique_ptr<Hl7Processor> processor_;
};

TEST_F(ProcessorTest, AcceptedMessageIsStoredWithItsEffectsAndAResendChangesNothing) {
  const std::string ack = ProcessAndApply(kAdt);
  EXPECT_EQ(Msa(ack), "AA") << ack;
  auto patients = Search("Patient", "identifier", "http://rhip.health/id/mrn/330402-H01|MR001");
  ASSERT_EQ(patients["total"].GetInt(), 1);
  EXPECT_EQ(std::string(patients["entry"][0]["resource"]["name"][0]["text"].GetString()), "张伟");
  EXPECT_EQ(Search("Encounter", "identifier", "http://rhip.health/id/visit/330402-H01|V1")["total"].GetInt(), 1);
  auto record = store_->ReadMessage("330402-H01", "CTRL-1");
  ASSERT_TRUE(record.ok() && record->has_value());
  EXPECT_EQ((*record)->status, "processed");
  EXPECT_EQ((*record)->raw, kAdt);
  EXPECT_EQ((*record)->ack, ack);
  // The same message again: the same ACK, byte for byte, and no new version.
  EXPECT_EQ(ProcessAndApply(kAdt), ack);
  auto again = Search("Patient", "identifier", "http://rhip.health/id/mrn/330402-H01|MR001");
  EXPECT_EQ(std::string(again["entry"][0]["resource"]["meta"]["versionId"].GetString()), "1");
  // A new message about the same registration updates it in place (conditional update).
  std::string update = kAdt;
  update.replace(update.find("CTRL-1"), 6, "CTRL-2");
  update.replace(update.find("ADT^A04"), 7, "ADT^A08");
  update.replace(update.find("13812345678"), 11, "13900000000");
  EXPECT_EQ(Msa(ProcessAndApply(update)), "AA");
  auto updated = Search("Patient", "identifier", "http://rhip.health/id/mrn/330402-H01|MR001");
  ASSERT_EQ(updated["total"].GetInt(), 1);
  EXPECT_EQ(std::string(updated["entry"][0]["resource"]["telecom"][0]["value"].GetString()), "13900000000");
}

TEST_F(ProcessorTest, BadMessagesAreDeadLettersWithTheirReasonAndReplayWorksOnceFixed) {
  std::string bad = kAdt;
  bad.replace(bad.find("||19800101|"), 11, "||19801340|");
  const std::string ae = processor_->Process(bad);
  EXPECT_EQ(Msa(ae), "AE");
  EXPECT_NE(ae.find("PID-7"), std::string::npos) << ae;
  EXPECT_NE(ae.find("\rERR||PID^1^7"), std::string::npos) << ae;
  EXPECT_EQ(Search("Patient", "identifier", "http://rhip.health/id/mrn/330402-H01|MR001")["total"].GetInt(), 0);
  auto dead = store_->Messages("failed", 10);
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_NE((*dead)[0].error.find("birth date"), std::string::npos);
  // Unsupported type: AR, also kept.
  std::string mfn = kAdt;
  mfn.replace(mfn.find("CTRL-1"), 6, "CTRL-9");
  mfn.replace(mfn.find("ADT^A04"), 7, "MFN^M02");
  EXPECT_EQ(Msa(processor_->Process(mfn)), "AR");
  // No MSH at all: AR, nothing to key it by, nothing stored.
  EXPECT_EQ(Msa(processor_->Process("PID|1||X")), "AR");
  EXPECT_EQ(store_->Messages("failed", 10)->size(), 2u);

  // A message the store refuses for a reason that can be fixed: two Patients already
  // share the MRN, so the conditional update cannot choose. A steward removes the
  // duplicate; the replay then succeeds.
  ASSERT_NO_FATAL_FAILURE(TwoPatientsShareTheMrn());
  std::string good = kAdt;
  good.replace(good.find("CTRL-1"), 6, "CTRL-3");
  // Accepted (it is a valid message), then refused by the store when applied: a dead letter.
  const std::string accepted = ProcessAndApply(good);
  EXPECT_EQ(Msa(accepted), "AA");
  auto refused = store_->ReadMessage("330402-H01", "CTRL-3");
  EXPECT_EQ((*refused)->status, "failed");
  EXPECT_NE((*refused)->error.find("several"), std::string::npos) << (*refused)->error;
  EXPECT_EQ(processor_->Stats().failed, 3);
  EXPECT_EQ(ProcessAndApply(good), accepted) << "a re-send gets the ACK it got";
  fhir::RestRequest del;
  del.method = "DELETE";
  del.path = "Patient/dup-b";
  del.base_url = "http://x/fhir";
  ASSERT_LT(fhir_->Handle(del).status, 300);
  auto replay = processor_->Replay(100);
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->attempted, 3);
  EXPECT_EQ(replay->processed, 1);  // CTRL-3
  EXPECT_EQ(replay->failed, 2);     // the bad date and the MFN still fail, for the same reasons
  auto fixed = store_->ReadMessage("330402-H01", "CTRL-3");
  EXPECT_EQ((*fixed)->status, "processed");
  EXPECT_EQ((*fixed)->attempts, 2);
  EXPECT_EQ(Msa((*fixed)->ack), "AA");
  EXPECT_EQ(Search("Patient", "identifier", "http://rhip.health/id/mrn/330402-H01|MR001")["total"].GetInt(), 1);
}

// The listener: framing, bad framing, oversized frames, and that one bad peer
// does not stop another.
TEST_F(ProcessorTest, AcceptedButUnappliedMessagesAreAppliedAfterARestart) {
  // A processor that accepts but is stopped before applying: as after a crash.
  processor_->Stop();
  Hl7Processor stopped(store_.get(), fhir_.get());
  EXPECT_EQ(Msa(stopped.Process(kAdt)), "AA");
  EXPECT_EQ((*store_->ReadMessage("330402-H01", "CTRL-1"))->status, "queued");
  EXPECT_EQ(Search("Patient", "identifier", "http://rhip.health/id/mrn/330402-H01|MR001")["total"].GetInt(), 0);
  Hl7Processor restarted(store_.get(), fhir_.get());
  ASSERT_TRUE(restarted.Start().ok());
  ASSERT_TRUE(restarted.WaitIdle(30));
  EXPECT_EQ((*store_->ReadMessage("330402-H01", "CTRL-1"))->status, "processed");
  EXPECT_EQ(Search("Patient", "identifier", "http://rhip.health/id/mrn/330402-H01|MR001")["total"].GetInt(), 1);
  EXPECT_EQ(restarted.Stats().processed, 1);
}

TEST_F(ProcessorTest, WithItsOwnReceiveLogAMessageIsNeverAppliedTwice) {
  processor_->Stop();
  auto opened = store::OpenStore({.url = "sqlite::memory:", .read_connections = 2});
  ASSERT_TRUE(opened.ok());
  std::unique_ptr<store::Store> inbox = std::move(*opened);
  {
    Hl7Processor p(store_.get(), fhir_.get(), {}, inbox.get());
    ASSERT_TRUE(p.Start().ok());
    EXPECT_EQ(Msa(p.Process(kAdt)), "AA");
    ASSERT_TRUE(p.WaitIdle(30));
    // The receive log's "processed" marks are written in batches; once the appliers are
    // idle every applied message is marked there too.
    for (int i = 0; i < 40; ++i) {
      std::string m = kAdt;
      m.replace(m.find("CTRL-1"), 6, "BATCH-" + std::to_string(i));
      m.replace(m.find("MR001"), 5, "MRB" + std::to_string(i));
      ASSERT_EQ(Msa(p.Process(m)), "AA");
    }
    ASSERT_TRUE(p.WaitIdle(30));
    EXPECT_EQ(inbox->Messages("queued", 100)->size(), 0u);
    EXPECT_EQ(inbox->Messages("processed", 100)->size(), 41u);
    // The marks change the outcome only: the raw bytes and the ACK stay in the receive log.
    auto kept = inbox->ReadMessage("330402-H01", "BATCH-7");
    ASSERT_TRUE(kept.ok() && kept->has_value());
    EXPECT_NE((*kept)->raw.find("MRB7"), std::string::npos);
    EXPECT_EQ(Msa((*kept)->ack), "AA");
  }
  EXPECT_EQ((*inbox->ReadMessage("330402-H01", "CTRL-1"))->status, "processed");
  auto mark = store_->ReadMessage("330402-H01", "CTRL-1");
  ASSERT_TRUE(mark->has_value()) << "the applied mark is in the FHIR store";
  EXPECT_TRUE((*mark)->raw.empty()) << "without the raw bytes, which the receive log keeps";
  // A crash after the FHIR commit but before the receive log caught up: it still says queued.
  store::InboundMessage behind = **inbox->ReadMessage("330402-H01", "CTRL-1");
  behind.status = "queued";
  ASSERT_TRUE(inbox->Write([&](store::WriteTransaction& tx) { return tx.PutMessage(behind); }).ok());
  // And one accepted message never applied at all.
  std::string second = kAdt;
  second.replace(second.find("CTRL-1"), 6, "CTRL-2");
  second.replace(second.find("MR001"), 5, "MR002");
  {
    Hl7Processor accepting_only(store_.get(), fhir_.get(), {}, inbox.get());
    EXPECT_EQ(Msa(accepting_only.Process(second)), "AA");
  }
  Hl7Processor restarted(store_.get(), fhir_.get(), {}, inbox.get());
  ASSERT_TRUE(restarted.Start().ok());
  ASSERT_TRUE(restarted.WaitIdle(30));
  EXPECT_EQ(restarted.Stats().processed, 1) << "only the unapplied one";
  auto p1 = Search("Patient", "identifier", "http://rhip.health/id/mrn/330402-H01|MR001");
  EXPECT_EQ(std::string(p1["entry"][0]["resource"]["meta"]["versionId"].GetString()), "1") << "not applied twice";
  EXPECT_EQ(Search("Patient", "identifier", "http://rhip.health/id/mrn/330402-H01|MR002")["total"].GetInt(), 1);
  EXPECT_EQ((*inbox->ReadMessage("330402-H01", "CTRL-1"))->status, "processed");
  EXPECT_EQ((*inbox->ReadMessage("330402-H01", "CTRL-2"))->status, "processed");
}

TEST_F(ProcessorTest, CopiesOfOneMessageArrivingAtOnceAreRecordedAndAppliedOnce) {
  // A sender that times out and re-sends on another connection: the copies race.
  std::string visit = kAdt;  // an Encounter create each time it is applied, so twice would show
  constexpr int kCopies = 8;
  std::vector<std::string> acks(kCopies);
  std::vector<std::thread> senders;
  for (int i = 0; i < kCopies; ++i) senders.emplace_back([&, i] { acks[i] = processor_->Process(visit); });
  for (auto& t : senders) t.join();
  ASSERT_TRUE(processor_->WaitIdle(30));
  EXPECT_EQ(Msa(acks[0]), "AA") << acks[0];
  for (const auto& a : acks) EXPECT_EQ(a, acks[0]) << "every copy gets the one recorded ACK";
  EXPECT_EQ((*store_->ReadMessage("330402-H01", "CTRL-1"))->ack, acks[0]);
  EXPECT_EQ(processor_->Stats().processed, 1);
  auto p = Search("Patient", "identifier", "http://rhip.health/id/mrn/330402-H01|MR001");
  ASSERT_EQ(p["total"].GetInt(), 1);
  EXPECT_EQ(std::string(p["entry"][0]["resource"]["meta"]["versionId"].GetString()), "1");
  EXPECT_EQ(Search("Encounter", "identifier", "http://rhip.health/id/visit/330402-H01|V1")["total"].GetInt(), 1);

  // A refused message sent again gets its recorded AE, and stays one dead letter.
  std::string bad = kAdt;
  bad.replace(bad.find("CTRL-1"), 6, "CTRL-B");
  bad.replace(bad.find("||19800101|"), 11, "||19801340|");
  const std::string ae = processor_->Process(bad);
  EXPECT_EQ(Msa(ae), "AE");
  EXPECT_EQ(processor_->Process(bad), ae);
  EXPECT_EQ(store_->Messages("failed", 10)->size(), 1u);
  EXPECT_EQ(processor_->Stats().failed, 1);
  // And an accepted message re-sent with a body that would now be refused keeps its AA:
  // the control id names the message, the receive log answers for it.
  std::string changed = kAdt;
  changed.replace(changed.find("||19800101|"), 11, "||19801340|");
  EXPECT_EQ(processor_->Process(changed), acks[0]);
}

TEST_F(ProcessorTest, WithItsOwnReceiveLogADeadLetterKeepsItsRawBytesForTheReplay) {
  // The queue does not hold the raw bytes when the receive log is a store of its own; a
  // message refused when applied must still be replayable from the log.
  processor_->Stop();
  auto opened = store::OpenStore({.url = "sqlite::memory:", .read_connections = 2});
  ASSERT_TRUE(opened.ok());
  std::unique_ptr<store::Store> inbox = std::move(*opened);
  ASSERT_NO_FATAL_FAILURE(TwoPatientsShareTheMrn());  // the conditional update cannot choose
  Hl7Processor p(store_.get(), fhir_.get(), {}, inbox.get());
  ASSERT_TRUE(p.Start().ok());
  EXPECT_EQ(Msa(p.Process(kAdt)), "AA");
  ASSERT_TRUE(p.WaitIdle(30));
  auto dead = inbox->ReadMessage("330402-H01", "CTRL-1");
  ASSERT_TRUE(dead.ok() && dead->has_value());
  EXPECT_EQ((*dead)->status, "failed");
  EXPECT_EQ((*dead)->raw, kAdt) << "the dead letter keeps the bytes as received";
  fhir::RestRequest del;
  del.method = "DELETE";
  del.path = "Patient/dup-b";
  del.base_url = "http://x/fhir";
  ASSERT_LT(fhir_->Handle(del).status, 300);
  auto replay = p.Replay(10);
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay->processed, 1);
  EXPECT_EQ((*inbox->ReadMessage("330402-H01", "CTRL-1"))->status, "processed");
  EXPECT_EQ(std::string(Search("Patient", "identifier", "http://rhip.health/id/mrn/330402-H01|MR001")["entry"][0]
                            ["resource"]["name"][0]["text"].GetString()), "张伟");
}

TEST_F(ProcessorTest, ARecordHeldWithoutAnAckIsReplacedByTheMessageReceivedNow) {
  // A record without an ACK (written before ACKs were recorded) cannot answer a re-send:
  // the message is taken as new, and its record replaced.
  ASSERT_TRUE(store_->Write([](store::WriteTransaction& tx) {
                      return tx.PutMessage({.sender = "330402-H01", .control_id = "CTRL-1", .type = "ADT^A04",
                                            .received = 1, .raw = "MSH|old", .status = "failed", .ack = "",
                                            .error = "old", .attempts = 1});
                    }).ok());
  const std::string ack = ProcessAndApply(kAdt);
  EXPECT_EQ(Msa(ack), "AA") << ack;
  auto record = store_->ReadMessage("330402-H01", "CTRL-1");
  EXPECT_EQ((*record)->ack, ack);
  EXPECT_EQ((*record)->raw, kAdt);
  EXPECT_EQ((*record)->status, "processed");
  EXPECT_EQ(Search("Patient", "identifier", "http://rhip.health/id/mrn/330402-H01|MR001")["total"].GetInt(), 1);
}

TEST_F(ProcessorTest, MessagesAboutOnePatientAreAppliedInOrder) {
  // Registration, then five updates of the phone: the last one wins.
  std::string last;
  for (int i = 0; i < 6; ++i) {
    std::string m = kAdt;
    m.replace(m.find("CTRL-1"), 6, "ORD-" + std::to_string(i));
    if (i > 0) m.replace(m.find("ADT^A04"), 7, "ADT^A08");
    last = "1390000000" + std::to_string(i);
    m.replace(m.find("13812345678"), 11, last);
    EXPECT_EQ(Msa(processor_->Process(m)), "AA");
  }
  ASSERT_TRUE(processor_->WaitIdle(30));
  auto p = Search("Patient", "identifier", "http://rhip.health/id/mrn/330402-H01|MR001");
  ASSERT_EQ(p["total"].GetInt(), 1);
  EXPECT_EQ(std::string(p["entry"][0]["resource"]["telecom"][0]["value"].GetString()), last);
  EXPECT_EQ(std::string(p["entry"][0]["resource"]["meta"]["versionId"].GetString()), "6");
}

TEST_F(ProcessorTest, MllpListenerAnswersEveryFrameAndSurvivesBadPeers) {
  MllpServer server({.bind = "127.0.0.1", .port = 0, .io_threads = 2, .workers = 4, .max_message_bytes = 64 * 1024},
                    [this](std::string_view m, const MllpPeer&) { return processor_->Process(m); });
  ASSERT_TRUE(server.Start().ok());
  MllpClient good;
  ASSERT_TRUE(good.Connect("127.0.0.1", server.port()).ok());
  auto ack = good.Send(kAdt);
  ASSERT_TRUE(ack.ok()) << ack.status().ToString();
  EXPECT_EQ(Msa(*ack), "AA");
  // AA means stored: the message is in the store before the ACK left.
  EXPECT_TRUE(store_->ReadMessage("330402-H01", "CTRL-1")->has_value());
  // An oversized frame is read to its end and refused with AR; the connection stays usable.
  std::string big = kAdt;
  big.replace(big.find("CTRL-1"), 6, "CTRL-BIG");
  big += "NTE|1||" + std::string(100 * 1024, 'x') + "\r";
  auto too_big = good.Send(big);
  ASSERT_TRUE(too_big.ok());
  EXPECT_EQ(Msa(*too_big), "AR");
  EXPECT_NE(too_big->find("exceeds"), std::string::npos);
  EXPECT_FALSE(store_->ReadMessage("330402-H01", "CTRL-BIG")->has_value());
  // Garbage without any frame: the listener closes that connection.
  {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::socket raw(ioc);
    raw.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(server.port())});
    timeval tv{5, 0};
    setsockopt(raw.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    boost::system::error_code ec;
    boost::asio::write(raw, boost::asio::buffer(std::string(10000, 'g')), ec);
    char buf[16];
    raw.read_some(boost::asio::buffer(buf), ec);
    EXPECT_EQ(ec, boost::asio::error::eof) << ec.message();
  }
  // A truncated frame (the peer goes away mid-message): nothing stored, nothing acknowledged.
  {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::socket raw(ioc);
    raw.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(server.port())});
    std::string half = "\x0b" + kAdt.substr(0, 80);
    half.replace(half.find("CTRL-1"), 6, "CTRL-H");
    boost::asio::write(raw, boost::asio::buffer(half));
  }
  std::string second = kAdt;
  second.replace(second.find("CTRL-1"), 6, "CTRL-2");
  auto ack2 = good.Send(second);
  ASSERT_TRUE(ack2.ok());
  EXPECT_EQ(Msa(*ack2), "AA");
  server.Stop();
  EXPECT_FALSE(store_->ReadMessage("330402-H01", "CTRL-H")->has_value());
}


// The default listener (messages processed on the I/O thread that read them): frames
// split across reads, frames pipelined in one write, a frame cut by the start of the next,
// and the idle clock, which closes a silent peer but not one that keeps sending.
TEST_F(ProcessorTest, MllpFramingAcrossReadsAndTheIdleClock) {
  MllpServer server({.bind = "127.0.0.1", .port = 0, .io_threads = 2, .workers = 0, .max_message_bytes = 64 * 1024,
                     .idle_timeout = std::chrono::seconds(1)},
                    [this](std::string_view m, const MllpPeer&) { return processor_->Process(m); });
  ASSERT_TRUE(server.Start().ok());
  namespace asio = boost::asio;
  asio::io_context ioc;
  auto connect = [&] {
    asio::ip::tcp::socket sock(ioc);
    sock.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(server.port())});
    timeval tv{5, 0};
    setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return sock;
  };
  // Reads whole ACK frames until `count` have come (or the peer closed).
  auto read_acks = [](asio::ip::tcp::socket& sock, size_t count) {
    std::vector<std::string> acks;
    std::string buf;
    char chunk[4096];
    while (acks.size() < count) {
      boost::system::error_code ec;
      const size_t n = sock.read_some(asio::buffer(chunk), ec);
      if (ec) break;
      buf.append(chunk, n);
      for (size_t end; (end = buf.find('\x1c')) != std::string::npos;) {
        acks.push_back(buf.substr(1, end - 1));
        buf.erase(0, end + 2);
      }
    }
    return acks;
  };
  auto with_control = [](const std::string& control) {
    std::string m = kAdt;
    m.replace(m.find("CTRL-1"), 6, control);
    return m;
  };
  auto sock = connect();
  // One frame written a byte at a time.
  const std::string split = MllpFrame(with_control("SPLIT"));
  for (char c : split) asio::write(sock, asio::buffer(&c, 1));
  auto acks = read_acks(sock, 1);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(Msa(acks[0]), "AA") << acks[0];
  EXPECT_NE(acks[0].find("|SPLIT|"), std::string::npos) << acks[0];
  // Three frames in one write, the middle one cut short by the next frame's start byte: the
  // cut one is dropped (never acknowledged, never stored), the others answered in order.
  const std::string cut = MllpFrame(with_control("CUT"));
  const std::string burst =
      MllpFrame(with_control("PIPE-1")) + cut.substr(0, cut.size() / 2) + MllpFrame(with_control("PIPE-2"));
  asio::write(sock, asio::buffer(burst));
  acks = read_acks(sock, 2);
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_NE(acks[0].find("|PIPE-1|"), std::string::npos) << acks[0];
  EXPECT_NE(acks[1].find("|PIPE-2|"), std::string::npos) << acks[1];
  EXPECT_FALSE(store_->ReadMessage("330402-H01", "CUT")->has_value());
  // The idle clock: `busy` sends a message every 400 ms for 2 s (longer than the 1 s
  // timeout) and stays open; `silent` sends nothing and is closed.
  auto silent = connect();
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    asio::write(sock, asio::buffer(MllpFrame(with_control("BUSY-" + std::to_string(i)))));
    ASSERT_EQ(read_acks(sock, 1).size(), 1u) << "message " << i << " of a peer that keeps sending";
  }
  char byte;
  boost::system::error_code ec;
  silent.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, asio::error::eof) << "a silent peer is closed: " << ec.message();
  server.Stop();
}

TEST_F(ProcessorTest, AMessageForAnotherInstitutionThanTheCertificateIsRejectedAndNotRecorded) {
  // The client certificate proved 330402-T1; the message claims 330402-H01.
  const std::string ack = processor_->Process(kAdt, "330402-T1");
  EXPECT_EQ(Msa(ack), "AR") << ack;
  EXPECT_NE(ack.find("client certificate"), std::string::npos) << ack;
  EXPECT_NE(ack.find("|MSH^1^4^"), std::string::npos) << ack;  // ERR-2 names MSH-4
  // Nothing recorded under the other institution's key: its own message still goes through.
  EXPECT_FALSE(store_->ReadMessage("330402-H01", "CTRL-1")->has_value());
  EXPECT_EQ(Msa(processor_->Process(kAdt, "330402-H01")), "AA");
  EXPECT_TRUE(store_->ReadMessage("330402-H01", "CTRL-1")->has_value());
}

TEST_F(ProcessorTest, MllpOverTlsAcknowledgesAndAPlainClientIsClosedWithoutHarmingOthers) {
  namespace asio = boost::asio;
  using tcp = asio::ip::tcp;
  rhip::testing::TestCert tc("mllp-tls");
  std::string seen_peer;
  MllpServer server({.bind = "127.0.0.1", .port = 0, .io_threads = 2, .tls_cert = tc.cert, .tls_key = tc.key},
                    [&](std::string_view m, const MllpPeer& peer) {
                      EXPECT_TRUE(peer.tls);
                      EXPECT_EQ(peer.certificate_cn, "");  // no client certificates asked for
                      return processor_->Process(m);
                    });
  ASSERT_TRUE(server.Start().ok());
  asio::io_context ioc;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file(tc.cert);  // trust exactly this certificate
  ctx.set_verify_mode(asio::ssl::verify_peer);
  asio::ssl::stream<tcp::socket> tls(ioc, ctx);
  tls.next_layer().connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(server.port())});
  tls.handshake(asio::ssl::stream_base::client);
  EXPECT_GE(SSL_version(tls.native_handle()), TLS1_2_VERSION);
  auto exchange = [&](const std::string& msg) {
    asio::write(tls, asio::buffer(MllpFrame(msg)));
    std::string in;
    char buf[4096];
    while (in.find('\x1c') == std::string::npos) {
      boost::system::error_code ec;
      const size_t n = tls.read_some(asio::buffer(buf), ec);
      if (ec) break;
      in.append(buf, n);
    }
    return in;
  };
  const std::string ack = exchange(kAdt);
  ASSERT_EQ(ack.front(), '\x0b');
  EXPECT_EQ(Msa(ack.substr(1)), "AA") << ack;
  EXPECT_TRUE(store_->ReadMessage("330402-H01", "CTRL-1")->has_value());
  // A plain MLLP client on the TLS port: the handshake fails, the connection is closed, nothing stored.
  {
    tcp::socket plain(ioc);
    plain.connect({asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(server.port())});
    timeval tv{5, 0};
    setsockopt(plain.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string msg = kAdt;
    msg.replace(msg.find("CTRL-1"), 6, "CTRL-P");
    boost::system::error_code ec;
    asio::write(plain, asio::buffer(MllpFrame(msg)), ec);
    std::string got;
    char buf[4096];
    for (;;) {
      const size_t n = plain.read_some(asio::buffer(buf), ec);
      if (ec) break;
      got.append(buf, n);
    }
    // Closed (EOF, or a reset when the server left the unread frame behind), not left hanging.
    EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
    EXPECT_EQ(got.find("MSA"), std::string::npos);      // at most a TLS alert, never an ACK
    EXPECT_FALSE(store_->ReadMessage("330402-H01", "CTRL-P")->has_value());
  }
  // The TLS connection is unharmed.
  std::string second = kAdt;
  second.replace(second.find("CTRL-1"), 6, "CTRL-2");
  EXPECT_EQ(Msa(exchange(second).substr(1)), "AA");
  server.Stop();
}

TEST(MllpServer, TlsNeedsAMatchingCertificateAndKey) {
  rhip::testing::TestCert tc("mllp-tls");
  auto handler = [](std::string_view, const MllpPeer&) { return std::string(); };
  MllpServer no_key({.port = 0, .tls_cert = tc.cert}, handler);
  EXPECT_EQ(no_key.Start().code(), StatusCode::kInvalidArgument);
  const std::string key2 = (tc.dir / "key2.pem").string();
  ASSERT_EQ(std::system(("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + key2 + " 2>/dev/null").c_str()), 0);
  MllpServer wrong_key({.port = 0, .tls_cert = tc.cert, .tls_key = key2}, handler);
  const Status st = wrong_key.Start();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("does not belong"), std::string::npos) << st.ToString();
  MllpServer bad_ca({.port = 0, .tls_cert = tc.cert, .tls_key = tc.key, .tls_client_ca = "/nonexistent/ca.pem"}, handler);
  EXPECT_NE(bad_ca.Start().message().find("client CA"), std::string::npos);
}

}  // namespace
}  // namespace rhip::ingest
