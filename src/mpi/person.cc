#include "rhip/mpi/person.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdio>

namespace rhip::mpi {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void Str(Writer& w, const char* k, std::string_view v) {
  w.Key(k);
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

std::string_view Member(const rapidjson::Value& v, const char* k) {
  if (!v.IsObject()) return {};
  auto it = v.FindMember(k);
  return it != v.MemberEnd() && it->value.IsString() ? std::string_view(it->value.GetString(), it->value.GetStringLength())
                                                     : std::string_view();
}

// ISO 7064 MOD 11-2 over a string of digits (GB 11643's check character scheme).
char Mod11_2(std::string_view digits) {
  int sum = 0, weight = 1;
  for (size_t i = digits.size(); i-- > 0;) {
    weight = weight * 2 % 11;
    sum += (digits[i] - '0') * weight;
  }
  const int c = (12 - sum % 11) % 11;
  return c == 10 ? 'X' : static_cast<char>('0' + c);
}

constexpr const char* kFlagCodes[] = {"no-name", "id-malformed", "id-bad-check", "id-inconsistent", "birth-invalid"};

std::optional<Assurance> ParseAssurance(std::string_view s) {
  if (s == "level1") return Assurance::kLevel1;
  if (s == "level2") return Assurance::kLevel2;
  if (s == "level3") return Assurance::kLevel3;
  if (s == "level4") return Assurance::kLevel4;
  return std::nullopt;
}

LinkMethod ParseMethod(std::string_view s) {
  return s == "manual" ? LinkMethod::kManual : s == "source" ? LinkMethod::kSource : LinkMethod::kAuto;
}

void WriteLink(Writer& w, const PersonLink& l, bool extensions) {
  w.StartObject();
  if (extensions) {
    // Most links are automatic and unflagged: they carry no extension (the default method is auto).
    if (l.method != LinkMethod::kAuto || l.flags) {
      w.Key("extension");
      w.StartArray();
      if (l.method != LinkMethod::kAuto) {
        w.StartObject();
        Str(w, "url", kLinkMethodUrl);
        Str(w, "valueCode", LinkMethodCode(l.method));
        w.EndObject();
      }
      for (const auto& code : QualityFlagCodes(l.flags)) {
        w.StartObject();
        Str(w, "url", kRecordQualityUrl);
        Str(w, "valueCode", code);
        w.EndObject();
      }
      w.EndArray();
    }
    w.Key("target");
    w.StartObject();
    Str(w, "reference", "Patient/" + l.patient);
    w.EndObject();
  } else {
    Str(w, "patient", l.patient);
    Str(w, "method", LinkMethodCode(l.method));
    if (l.flags) {
      w.Key("flags");
      w.StartArray();
      for (const auto& code : QualityFlagCodes(l.flags)) w.String(code.c_str());
      w.EndArray();
    }
  }
  Str(w, "assurance", AssuranceCode(l.assurance));
  w.EndObject();
}

}  // namespace

std::string PersonIdFor(std::string_view region, int64_t sequence) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%.6s%010lld", std::string(region).c_str(), static_cast<long long>(sequence));
  std::string id(digits);
  id.push_back(Mod11_2(id));
  return id;
}

std::optional<int64_t> PersonSequence(std::string_view id) {
  if (id.size() != 17) return std::nullopt;
  for (size_t i = 0; i < 16; ++i)
    if (id[i] < '0' || id[i] > '9') return std::nullopt;
  if (Mod11_2(id.substr(0, 16)) != id[16]) return std::nullopt;
  int64_t seq = 0;
  for (size_t i = 6; i < 16; ++i) seq = seq * 10 + (id[i] - '0');
  return seq;
}

const char* AssuranceCode(Assurance a) {
  switch (a) {
    case Assurance::kLevel1: return "level1";
    case Assurance::kLevel2: return "level2";
    case Assurance::kLevel3: return "level3";
    case Assurance::kLevel4: return "level4";
  }
  return "level1";
}

const char* LinkMethodCode(LinkMethod m) {
  switch (m) {
    case LinkMethod::kAuto: return "auto";
    case LinkMethod::kManual: return "manual";
    case LinkMethod::kSource: return "source";
  }
  return "auto";
}

std::vector<std::string> QualityFlagCodes(uint32_t flags) {
  std::vector<std::string> out;
  for (size_t i = 0; i < std::size(kFlagCodes); ++i)
    if (flags & (1u << i)) out.emplace_back(kFlagCodes[i]);
  return out;
}

uint32_t QualityFlagsFromCodes(const std::vector<std::string>& codes) {
  uint32_t f = 0;
  for (const auto& c : codes)
    for (size_t i = 0; i < std::size(kFlagCodes); ++i)
      if (c == kFlagCodes[i]) f |= 1u << i;
  return f;
}

std::string PersonJson(const PersonState& p) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  Str(w, "resourceType", "Person");
  Str(w, "id", p.id);
  const bool flagged = std::any_of(p.links.begin(), p.links.end(), [](const PersonLink& l) { return l.flags != 0; });
  if (flagged) {
    w.Key("meta");
    w.StartObject();
    w.Key("tag");
    w.StartArray();
    w.StartObject();
    Str(w, "system", kFlagSystem);
    Str(w, "code", "data-quality");
    Str(w, "display", "a linked record has data-quality flags (see link extensions)");
    w.EndObject();
    w.EndArray();
    w.EndObject();
  }
  w.Key("identifier");
  w.StartArray();
  w.StartObject();
  Str(w, "use", "official");
  Str(w, "system", kPersonIdSystem);
  Str(w, "value", p.id);
  w.EndObject();
  w.EndArray();
  w.Key("active");
  w.Bool(p.active);
  if (!p.links.empty() || !p.merged_into.empty()) {
    w.Key("link");
    w.StartArray();
    for (const auto& l : p.links) WriteLink(w, l, true);
    if (!p.merged_into.empty()) {
      w.StartObject();
      w.Key("target");
      w.StartObject();
      Str(w, "reference", "Person/" + p.merged_into);
      w.EndObject();
      Str(w, "assurance", "level4");
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

StatusOr<PersonState> ParsePersonJson(std::string_view json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsObject() || Member(d, "resourceType") != "Person") return InvalidArgument("not a Person resource");
  PersonState p;
  p.id = std::string(Member(d, "id"));
  if (auto a = d.FindMember("active"); a != d.MemberEnd() && a->value.IsBool()) p.active = a->value.GetBool();
  if (auto m = d.FindMember("meta"); m != d.MemberEnd() && m->value.IsObject()) {
    const std::string_view v = Member(m->value, "versionId");
    p.version = v.empty() ? 0 : std::atoll(std::string(v).c_str());
  }
  if (auto links = d.FindMember("link"); links != d.MemberEnd() && links->value.IsArray()) {
    for (const auto& l : links->value.GetArray()) {
      auto t = l.FindMember("target");
      if (t == l.MemberEnd()) continue;
      const std::string_view ref = Member(t->value, "reference");
      if (ref.rfind("Person/", 0) == 0) {
        p.merged_into = std::string(ref.substr(7));
        continue;
      }
      if (ref.rfind("Patient/", 0) != 0) continue;
      PersonLink link;
      link.patient = std::string(ref.substr(8));
      link.assurance = ParseAssurance(Member(l, "assurance")).value_or(Assurance::kLevel1);
      std::vector<std::string> flags;
      if (auto e = l.FindMember("extension"); e != l.MemberEnd() && e->value.IsArray()) {
        for (const auto& x : e->value.GetArray()) {
          if (Member(x, "url") == kLinkMethodUrl) link.method = ParseMethod(Member(x, "valueCode"));
          if (Member(x, "url") == kRecordQualityUrl) flags.emplace_back(Member(x, "valueCode"));
        }
      }
      link.flags = QualityFlagsFromCodes(flags);
      p.links.push_back(std::move(link));
    }
  }
  std::sort(p.links.begin(), p.links.end(), [](const PersonLink& a, const PersonLink& b) { return a.patient < b.patient; });
  return p;
}

std::string LinksJson(const std::vector<PersonLink>& links) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartArray();
  for (const auto& l : links) WriteLink(w, l, false);
  w.EndArray();
  return std::string(buf.GetString(), buf.GetSize());
}

StatusOr<std::vector<PersonLink>> ParseLinksJson(std::string_view json) {
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  if (d.HasParseError() || !d.IsArray()) return InvalidArgument("not a JSON array of links");
  std::vector<PersonLink> out;
  for (const auto& l : d.GetArray()) {
    PersonLink link;
    link.patient = std::string(Member(l, "patient"));
    link.assurance = ParseAssurance(Member(l, "assurance")).value_or(Assurance::kLevel1);
    link.method = ParseMethod(Member(l, "method"));
    std::vector<std::string> flags;
    if (auto f = l.FindMember("flags"); f != l.MemberEnd() && f->value.IsArray())
      for (const auto& x : f->value.GetArray())
        if (x.IsString()) flags.emplace_back(x.GetString());
    link.flags = QualityFlagsFromCodes(flags);
    out.push_back(std::move(link));
  }
  return out;
}

}  // namespace rhip::mpi
