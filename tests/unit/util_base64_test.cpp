#include "util/base64.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>

using namespace ferry::util;

namespace {

std::string all_octets() {
    std::string s;
    for (int i = 0; i < 256; ++i) s += static_cast<char>(i);
    return s;
}

TEST(Base64Util, Rfc4648Vectors) {
    // RFC 4648 10.
    for (const auto& [plain, coded] : {std::pair{"", ""}, std::pair{"f", "Zg=="}, std::pair{"fo", "Zm8="},
                                       std::pair{"foo", "Zm9v"}, std::pair{"foob", "Zm9vYg=="},
                                       std::pair{"fooba", "Zm9vYmE="}, std::pair{"foobar", "Zm9vYmFy"}}) {
        EXPECT_EQ(base64_encode(plain), coded);
        EXPECT_EQ(base64_decode(coded), std::string(plain));
    }
}

TEST(Base64Util, EveryOctetAndLengthRoundTrips) {
    const std::string all = all_octets() + all_octets();
    for (std::size_t n = 0; n <= all.size(); ++n) {
        const std::string plain = all.substr(all.size() - n);
        const std::string coded = base64_encode(plain);
        EXPECT_EQ(coded.size(), (n + 2) / 3 * 4);
        EXPECT_EQ(base64_decode(coded), plain) << n;
    }
}

TEST(Base64Util, StrictDecodeRefusesAnythingElse) {
    for (const char* bad : {"Zg", "Zg=", "Z===", "====", "=", "Zm9v=", "Zm=v", "Zm9 v", "Zm9v\r\n", "Zm-v", "Zm_v",
                            "Zg==Zg==", "=Zm9", "Zm9vY", "Zm9v!A==", "\nZm9v", "Zg=\n"})
        EXPECT_FALSE(base64_decode(bad)) << bad;
    EXPECT_FALSE(base64_decode(std::string("Zm9\0", 4)));
    EXPECT_FALSE(base64_decode("Zm9v\xC3\xA9Zg"));
}

TEST(Base64Util, NonZeroPadBitsAreAccepted) {
    // RFC 4648 3.5 allows refusing them; SASL and DKIM never did, so neither does the shared decoder.
    EXPECT_EQ(base64_decode("Zh=="), std::string("f"));
    EXPECT_EQ(base64_decode("Zm9="), std::string("fo"));
}

TEST(Base64Mime, LinesOf76WithCrlf) {
    EXPECT_EQ(base64_encode_mime(""), "");
    EXPECT_EQ(base64_encode_mime("foobar"), "Zm9vYmFy\r\n");
    const std::string fits(57, 'x');   // exactly one full line
    EXPECT_EQ(base64_encode_mime(fits), base64_encode(fits) + "\r\n");
    EXPECT_EQ(base64_encode(fits).size(), 76U);

    std::string data;
    for (int i = 0; i < 20; ++i) data += all_octets();
    const std::string coded = base64_encode_mime(data);
    std::string joined;
    std::size_t pos = 0;
    while (pos < coded.size()) {
        const auto end = coded.find("\r\n", pos);
        ASSERT_NE(end, std::string::npos);
        const std::size_t len = end - pos;
        EXPECT_LE(len, kMimeBase64LineLength);
        if (end + 2 < coded.size()) {
            EXPECT_EQ(len, kMimeBase64LineLength);   // only the last line is shorter
        }
        joined.append(coded, pos, len);
        pos = end + 2;
    }
    EXPECT_EQ(joined, base64_encode(data));
    EXPECT_EQ(base64_decode(joined), data);
    EXPECT_EQ(coded.find('\n'), coded.find("\r\n") + 1);
}

}  // namespace
