// Random (version 4) UUIDs in their 8-4-4-4-12 lowercase hex form: event ids (from the writer's
// fast generator) and generated task ids (from OpenSSL's CSPRNG: unguessable). One formatter for
// both. Pure functions; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace outreach::store {

// Sets the version (4) and variant (RFC 4122) bits of 16 random bytes and formats them, written
// out by hand: one per event on the writer thread, where a 16-argument StrFormat showed in the
// profile.
inline std::string UuidV4FromRandomBytes(std::array<uint8_t, 16> b) {
  b[6] = static_cast<uint8_t>((b[6] & 0x0F) | 0x40);  // version 4: random
  b[8] = static_cast<uint8_t>((b[8] & 0x3F) | 0x80);  // variant 10: RFC 4122
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  id.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) id.push_back('-');
    id.push_back(kHex[b[i] >> 4]);
    id.push_back(kHex[b[i] & 0x0F]);
  }
  return id;
}

}  // namespace outreach::store
