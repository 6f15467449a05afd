#include "rhip/security/pseudonym.h"

#include <fcntl.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <vector>

#include "rhip/core/log.h"
#include "rhip/fhir/definitions.h"

namespace rhip::security {
namespace {

namespace fs = std::filesystem;
constexpr char kHex[] = "0123456789abcdef";

std::string Hex(const unsigned char* p, size_t n) {
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += kHex[p[i] >> 4];
    out += kHex[p[i] & 15];
  }
  return out;
}

bool FromHex(std::string_view hex, std::string* out) {
  auto val = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  if (hex.size() % 2) return false;
  out->clear();
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = val(hex[i]), lo = val(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
  return true;
}

bool IsPersonalType(std::string_view type) {
  return type == "Patient" || type == "Person" ||
         !fhir::Definitions::R4().PatientCompartmentParams(type).empty();
}

// A reference to a personal record: "Observation/x", "Patient/x",
// "http://host/fhir/Patient/x/_history/2" → the type, the id and where the id sits.
struct PersonalRef {
  std::string type, id;
  size_t id_at = 0;
};
std::optional<PersonalRef> ParsePersonalRef(std::string_view ref) {
  if (ref.empty() || ref[0] == '#' || ref.rfind("urn:", 0) == 0) return std::nullopt;
  // Segments: the last "Type/id" pair, optionally followed by "_history/v".
  std::vector<std::pair<size_t, size_t>> segs;  // (start, length)
  for (size_t i = 0; i <= ref.size();) {
    size_t j = ref.find('/', i);
    if (j == std::string_view::npos) j = ref.size();
    segs.emplace_back(i, j - i);
    i = j + 1;
  }
  auto seg = [&](size_t k) { return ref.substr(segs[k].first, segs[k].second); };
  size_t n = segs.size();
  if (n >= 4 && seg(n - 2) == "_history") n -= 2;
  if (n < 2) return std::nullopt;
  const std::string type(seg(n - 2));
  const std::string_view id = seg(n - 1);
  if (id.empty() || !fhir::Definitions::R4().IsResourceType(type) || !IsPersonalType(type))
    return std::nullopt;
  return PersonalRef{type, std::string(id), segs[n - 1].first};
}

// Keys dropped wherever they occur in a personal record: free text (FHIR
// Annotation `note`, `comment`s, a report's conclusion and attached form).
bool IsFreeTextKey(std::string_view k) {
  return k == "note" || k == "comment" || k == "conclusion" || k == "presentedForm" ||
         k == "contained" || k == "photo";
}

// Strings whose value is structure, not text: never masked (an id or a code is not an ID number).
bool IsStructuralKey(std::string_view k) {
  return k == "reference" || k == "id" || k == "system" || k == "url" || k == "resourceType";
}

std::string CoarsenToMonth(std::string_view date) {
  // FHIR date / dateTime: YYYY, YYYY-MM, YYYY-MM-DD[Thh:mm…].
  return std::string(date.substr(0, std::min<size_t>(date.size(), 7)));
}

}  // namespace

StatusOr<Pseudonymizer> Pseudonymizer::Open(const std::string& keys_dir) {
  std::error_code ec;
  fs::create_directories(keys_dir, ec);
  if (ec) return Internal("cannot create key folder " + keys_dir + ": " + ec.message());
  ::chmod(keys_dir.c_str(), 0700);
  const fs::path path = fs::path(keys_dir) / "pseudonym.key";
  if (!fs::exists(path)) {
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1)
      return Internal("cannot draw a random pseudonymisation key (OpenSSL)");
    const std::string text = Hex(raw, sizeof raw) + "\n";
    const std::string tmp = path.string() + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) return Internal("cannot create " + tmp);
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                    ::fsync(fd) == 0;
    ::close(fd);
    // link() fails if another process made the key first: then both use that one.
    const bool linked = ok && ::link(tmp.c_str(), path.c_str()) == 0;
    ::unlink(tmp.c_str());
    if (!ok) return Internal("cannot write " + tmp);
    if (linked)
      log::Info("created the pseudonymisation key {} (keep it with the data folder's keys)",
                path.string());
  }
  std::ifstream in(path);
  std::string hex;
  in >> hex;
  std::string key;
  if (hex.size() != 64 || !FromHex(hex, &key))
    return Status(StatusCode::kDataLoss,
                  path.string() + " is not a pseudonymisation key (64 hex characters)");
  return Pseudonymizer(std::move(key));
}

std::string Pseudonymizer::Pseudonym(std::string_view type, std::string_view id) const {
  std::string input;
  input.reserve(type.size() + 1 + id.size());
  input.append(type).append("/").append(id);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(input.data()), input.size(), md, &len);
  return Hex(md, 16);  // 128 bits: collisions are negligible at any realistic population
}

void Pseudonymizer::Deidentify(fhir::Json& doc) const {
  if (!doc.IsObject()) return;
  auto& a = doc.GetAllocator();
  const std::string type(fhir::StringMember(doc, "resourceType"));
  const bool personal = IsPersonalType(type);
  const bool identity = type == "Patient" || type == "Person";

  if (personal) {
    for (const char* m : {"text", "identifier", "name", "telecom", "contact", "communication"})
      if (doc.HasMember(m)) doc.RemoveMember(m);
    if (auto it = doc.FindMember("address"); it != doc.MemberEnd() && it->value.IsArray()) {
      for (auto& addr : it->value.GetArray()) {
        if (!addr.IsObject()) continue;
        // Region codes only (GB/T 2260 district, city, province); no lines, text or postal code.
        for (const char* m : {"text", "line", "postalCode", "period"})
          if (addr.HasMember(m)) addr.RemoveMember(m);
      }
    }
    for (const char* m : {"birthDate", "deceasedDateTime"})
      if (auto it = doc.FindMember(m); it != doc.MemberEnd() && it->value.IsString()) {
        const std::string month =
            CoarsenToMonth({it->value.GetString(), it->value.GetStringLength()});
        it->value.SetString(month.c_str(), static_cast<rapidjson::SizeType>(month.size()), a);
      }
  }

  // Every value: Patient/Person references pseudonymised (displays and
  // identifiers of references dropped), free text dropped in personal records,
  // ID numbers and mobiles in what is left masked.
  auto walk = [&](auto& self, fhir::JsonValue& v) -> void {
    if (v.IsObject()) {
      if (auto ref = v.FindMember("reference"); ref != v.MemberEnd() && ref->value.IsString()) {
        if (v.HasMember("display")) v.RemoveMember("display");
        if (v.HasMember("identifier")) v.RemoveMember("identifier");
        if (auto pr = ParsePersonalRef({ref->value.GetString(), ref->value.GetStringLength()})) {
          const std::string_view r(ref->value.GetString(), ref->value.GetStringLength());
          const std::string out = std::string(r.substr(0, pr->id_at)) +
                                  Pseudonym(pr->type, pr->id) +
                                  std::string(r.substr(pr->id_at + pr->id.size()));
          ref->value.SetString(out.c_str(), static_cast<rapidjson::SizeType>(out.size()), a);
        }
      }
      for (auto it = v.MemberBegin(); it != v.MemberEnd();) {
        const std::string_view key(it->name.GetString(), it->name.GetStringLength());
        // In a personal record a nested identifier (a Reference's, an ID card number) goes too.
        if (personal && (IsFreeTextKey(key) || key == "identifier")) {
          it = v.EraseMember(it);
          continue;
        }
        if (it->value.IsString()) {
          if (!IsStructuralKey(key)) {
            const std::string_view s(it->value.GetString(), it->value.GetStringLength());
            std::string masked = MaskIdentifiers(s);
            if (masked != s)
              it->value.SetString(masked.c_str(), static_cast<rapidjson::SizeType>(masked.size()),
                                  a);
          }
        } else {
          self(self, it->value);
        }
        ++it;
      }
    } else if (v.IsArray()) {
      for (auto& x : v.GetArray())
        if (!x.IsString())
          self(self, x);
        else {
          std::string masked = MaskIdentifiers({x.GetString(), x.GetStringLength()});
          x.SetString(masked.c_str(), static_cast<rapidjson::SizeType>(masked.size()), a);
        }
    }
  };
  walk(walk, doc);

  // Every personal record's id: ids of other types in a compartment often carry the
  // patient's id or number ("imm-00000006-bopv-2"), so they are pseudonymised too.
  if (personal) {
    if (auto it = doc.FindMember("id"); it != doc.MemberEnd() && it->value.IsString()) {
      const std::string p = Pseudonym(type, {it->value.GetString(), it->value.GetStringLength()});
      it->value.SetString(p.c_str(), static_cast<rapidjson::SizeType>(p.size()), a);
      if (!identity) return;
      // The one identifier left: the pseudonym, so a de-identified record still says what
      // identifies it.
      fhir::JsonValue ident(rapidjson::kObjectType);
      ident.AddMember("system", rapidjson::StringRef(kSystem), a);
      ident.AddMember("value",
                      fhir::JsonValue(p.c_str(), static_cast<rapidjson::SizeType>(p.size()), a), a);
      fhir::JsonValue list(rapidjson::kArrayType);
      list.PushBack(ident, a);
      doc.AddMember("identifier", list, a);
    }
  }
}

}  // namespace rhip::security
