#include "idsync/mapping/glob.h"

#include <algorithm>
#include <cstdint>
#include <iterator>

namespace idsync::mapping {

namespace {

inline char Fold(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// One run of the simple case folding: every code point in [first, last]
// (step 1), or every other one starting at first (step 2, the upper-case
// half of alternating upper/lower pairs), folds to itself plus delta.
struct FoldRange {
  char32_t first;
  char32_t last;
  std::int32_t delta;
  std::uint8_t step;
};

// Unicode 14 CaseFolding.txt, statuses C and S, for U+0080-U+058F and
// U+1E00-U+1EFF, sorted and not overlapping. Some entries worth knowing:
// U+00B5 micro sign -> Greek mu; U+0130 (Turkic dotted I) is absent on
// purpose, it has only full and Turkic foldings; U+0178 -> U+00FF; U+017F
// long s -> 's'; U+03C2 final sigma -> sigma; U+0400-U+040F -> +0x50;
// U+1E9E capital sharp s -> U+00DF (which itself stays as is).
constexpr FoldRange kFolds[] = {
    {0x00B5, 0x00B5, 775, 1},   {0x00C0, 0x00D6, 32, 1},   {0x00D8, 0x00DE, 32, 1},
    {0x0100, 0x012E, 1, 2},     {0x0132, 0x0136, 1, 2},    {0x0139, 0x0147, 1, 2},
    {0x014A, 0x0176, 1, 2},     {0x0178, 0x0178, -121, 1}, {0x0179, 0x017D, 1, 2},
    {0x017F, 0x017F, -268, 1},  {0x0181, 0x0181, 210, 1},  {0x0182, 0x0184, 1, 2},
    {0x0186, 0x0186, 206, 1},   {0x0187, 0x0187, 1, 1},    {0x0189, 0x018A, 205, 1},
    {0x018B, 0x018B, 1, 1},     {0x018E, 0x018E, 79, 1},   {0x018F, 0x018F, 202, 1},
    {0x0190, 0x0190, 203, 1},   {0x0191, 0x0191, 1, 1},    {0x0193, 0x0193, 205, 1},
    {0x0194, 0x0194, 207, 1},   {0x0196, 0x0196, 211, 1},  {0x0197, 0x0197, 209, 1},
    {0x0198, 0x0198, 1, 1},     {0x019C, 0x019C, 211, 1},  {0x019D, 0x019D, 213, 1},
    {0x019F, 0x019F, 214, 1},   {0x01A0, 0x01A4, 1, 2},    {0x01A6, 0x01A6, 218, 1},
    {0x01A7, 0x01A7, 1, 1},     {0x01A9, 0x01A9, 218, 1},  {0x01AC, 0x01AC, 1, 1},
    {0x01AE, 0x01AE, 218, 1},   {0x01AF, 0x01AF, 1, 1},    {0x01B1, 0x01B2, 217, 1},
    {0x01B3, 0x01B5, 1, 2},     {0x01B7, 0x01B7, 219, 1},  {0x01B8, 0x01B8, 1, 1},
    {0x01BC, 0x01BC, 1, 1},     {0x01C4, 0x01C4, 2, 1},    {0x01C5, 0x01C5, 1, 1},
    {0x01C7, 0x01C7, 2, 1},     {0x01C8, 0x01C8, 1, 1},    {0x01CA, 0x01CA, 2, 1},
    {0x01CB, 0x01DB, 1, 2},     {0x01DE, 0x01EE, 1, 2},    {0x01F1, 0x01F1, 2, 1},
    {0x01F2, 0x01F4, 1, 2},     {0x01F6, 0x01F6, -97, 1},  {0x01F7, 0x01F7, -56, 1},
    {0x01F8, 0x021E, 1, 2},     {0x0220, 0x0220, -130, 1}, {0x0222, 0x0232, 1, 2},
    {0x023A, 0x023A, 10795, 1}, {0x023B, 0x023B, 1, 1},    {0x023D, 0x023D, -163, 1},
    {0x023E, 0x023E, 10792, 1}, {0x0241, 0x0241, 1, 1},    {0x0243, 0x0243, -195, 1},
    {0x0244, 0x0244, 69, 1},    {0x0245, 0x0245, 71, 1},   {0x0246, 0x024E, 1, 2},
    {0x0345, 0x0345, 116, 1},   {0x0370, 0x0372, 1, 2},    {0x0376, 0x0376, 1, 1},
    {0x037F, 0x037F, 116, 1},   {0x0386, 0x0386, 38, 1},   {0x0388, 0x038A, 37, 1},
    {0x038C, 0x038C, 64, 1},    {0x038E, 0x038F, 63, 1},   {0x0391, 0x03A1, 32, 1},
    {0x03A3, 0x03AB, 32, 1},    {0x03C2, 0x03C2, 1, 1},    {0x03CF, 0x03CF, 8, 1},
    {0x03D0, 0x03D0, -30, 1},   {0x03D1, 0x03D1, -25, 1},  {0x03D5, 0x03D5, -15, 1},
    {0x03D6, 0x03D6, -22, 1},   {0x03D8, 0x03EE, 1, 2},    {0x03F0, 0x03F0, -54, 1},
    {0x03F1, 0x03F1, -48, 1},   {0x03F4, 0x03F4, -60, 1},  {0x03F5, 0x03F5, -64, 1},
    {0x03F7, 0x03F7, 1, 1},     {0x03F9, 0x03F9, -7, 1},   {0x03FA, 0x03FA, 1, 1},
    {0x03FD, 0x03FF, -130, 1},  {0x0400, 0x040F, 80, 1},   {0x0410, 0x042F, 32, 1},
    {0x0460, 0x0480, 1, 2},     {0x048A, 0x04BE, 1, 2},    {0x04C0, 0x04C0, 15, 1},
    {0x04C1, 0x04CD, 1, 2},     {0x04D0, 0x052E, 1, 2},    {0x0531, 0x0556, 48, 1},
    {0x1E00, 0x1E94, 1, 2},     {0x1E9B, 0x1E9B, -58, 1},  {0x1E9E, 0x1E9E, -7615, 1},
    {0x1EA0, 0x1EFE, 1, 2},
};

char32_t FoldCodePoint(char32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + ('a' - 'A') : cp;
  if (cp < kFolds[0].first || cp > std::end(kFolds)[-1].last) return cp;
  // The last range starting at or before cp.
  const FoldRange* range =
      std::upper_bound(std::begin(kFolds), std::end(kFolds), cp,
                       [](char32_t c, const FoldRange& r) { return c < r.first; }) -
      1;
  if (cp > range->last) return cp;
  if (range->step == 2 && ((cp - range->first) & 1U) != 0) return cp;
  return static_cast<char32_t>(static_cast<std::int32_t>(cp) + range->delta);
}

// A byte that does not start a well-formed UTF-8 sequence decodes on its own
// to kInvalidBase + byte: above every code point, so it folds to itself and
// equals only the same byte.
constexpr char32_t kInvalidBase = 0x110000;

struct Decoded {
  char32_t cp;
  std::size_t length;
};

inline bool IsContinuation(unsigned char b) { return (b & 0xC0) == 0x80; }

// Decodes the non-ASCII sequence at text[i]. Well-formed means RFC 3629: the
// shortest form, no surrogates, nothing above U+10FFFF; anything else takes
// one byte, so malformed input still advances.
Decoded DecodeMultiByte(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[i + k]); };
  const unsigned char lead = byte(0);
  const std::size_t left = text.size() - i;
  if (lead >= 0xC2 && lead <= 0xDF) {
    if (left >= 2 && IsContinuation(byte(1))) {
      return {(char32_t{lead & 0x1FU} << 6) | (byte(1) & 0x3FU), 2};
    }
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    if (left >= 3 && IsContinuation(byte(1)) && IsContinuation(byte(2))) {
      const char32_t cp =
          (char32_t{lead & 0x0FU} << 12) | (char32_t{byte(1) & 0x3FU} << 6) | (byte(2) & 0x3FU);
      if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) return {cp, 3};
    }
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    if (left >= 4 && IsContinuation(byte(1)) && IsContinuation(byte(2)) &&
        IsContinuation(byte(3))) {
      const char32_t cp = (char32_t{lead & 0x07U} << 18) | (char32_t{byte(1) & 0x3FU} << 12) |
                          (char32_t{byte(2) & 0x3FU} << 6) | (byte(3) & 0x3FU);
      if (cp >= 0x10000 && cp <= 0x10FFFF) return {cp, 4};
    }
  }
  return {kInvalidBase + lead, 1};
}

// The folded code point at text[i] and its length in bytes; ASCII takes the
// short way.
inline Decoded FoldedAt(std::string_view text, std::size_t i) {
  const unsigned char b = static_cast<unsigned char>(text[i]);
  if (b < 0x80) return {static_cast<char32_t>(static_cast<unsigned char>(Fold(text[i]))), 1};
  Decoded d = DecodeMultiByte(text, i);
  d.cp = FoldCodePoint(d.cp);
  return d;
}

inline std::size_t UnitLength(std::string_view text, std::size_t i) {
  return static_cast<unsigned char>(text[i]) < 0x80 ? 1 : DecodeMultiByte(text, i).length;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  // Greedy matching with one remembered '*': on a mismatch the last '*'
  // swallows one more code point and matching resumes after it. Only the
  // latest '*' needs remembering, so the cost is O(|pattern| * |text|) at
  // worst, never exponential. '*' and '?' are ASCII, so they never occur
  // inside a multi-byte sequence and can be tested byte-wise.
  std::size_t p = 0;
  std::size_t t = 0;
  std::size_t star_p = std::string_view::npos;  // pattern index just after the last '*'
  std::size_t star_t = 0;                       // text index that '*' would swallow next
  while (t < text.size()) {
    if (p < pattern.size()) {
      const char pc = pattern[p];
      if (pc == '*') {
        while (p < pattern.size() && pattern[p] == '*') ++p;
        if (p == pattern.size()) return true;  // a trailing '*' takes the rest
        star_p = p;
        star_t = t;
        continue;
      }
      if (pc == '?') {
        ++p;
        t += UnitLength(text, t);
        continue;
      }
      const Decoded pd = FoldedAt(pattern, p);
      const Decoded td = FoldedAt(text, t);
      if (pd.cp == td.cp) {
        p += pd.length;
        t += td.length;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    star_t += UnitLength(text, star_t);
    t = star_t;
    p = star_p;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool HasGlob(std::string_view pattern) {
  return pattern.find_first_of("*?") != std::string_view::npos;
}

void AppendFoldCase(std::string_view utf8, std::string* out) {
  // Reserving the input's length covers every ASCII-only input and nearly
  // every other: only a few folds (U+023A, U+023E) grow by a byte.
  out->reserve(out->size() + utf8.size());
  std::size_t i = 0;
  while (i < utf8.size()) {
    const char c = utf8[i];
    if (static_cast<unsigned char>(c) < 0x80) {
      out->push_back(Fold(c));
      ++i;
      continue;
    }
    const Decoded d = DecodeMultiByte(utf8, i);
    const char32_t folded = FoldCodePoint(d.cp);  // a malformed byte stays as is
    if (folded == d.cp) {
      out->append(utf8.substr(i, d.length));  // unchanged, also malformed bytes
    } else {
      AppendUtf8(folded, out);
    }
    i += d.length;
  }
}

std::string FoldCase(std::string_view utf8) {
  std::string out;
  AppendFoldCase(utf8, &out);
  return out;
}

}  // namespace idsync::mapping
