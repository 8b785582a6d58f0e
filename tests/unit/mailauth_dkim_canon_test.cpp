#include "mailauth/dkim_canon.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "mailauth/dkim_crypto.hpp"

using namespace ferry;
using namespace ferry::mailauth;

namespace {

std::string canon_in_pieces(DkimCanon canon, std::string_view body, const std::vector<std::size_t>& cuts) {
    std::string out;
    const BodySink sink = [&out](std::string_view s) { out.append(s); };
    BodyCanonicalizer c(canon);
    std::size_t at = 0;
    for (const std::size_t cut : cuts) {
        c.feed(body.substr(at, cut - at), sink);
        at = cut;
    }
    c.feed(body.substr(at), sink);
    c.finish(sink);
    return out;
}

// The body canonicalizations as RFC 6376 3.4.3 and 3.4.4 read, line by line on the whole body: the reference
// the streaming version is compared with.
std::string reference_body(DkimCanon canon, std::string_view body) {
    std::vector<std::string> lines;
    std::size_t at = 0;
    bool last_unterminated = false;
    while (at < body.size()) {
        const std::size_t e = body.find("\r\n", at);
        if (e == std::string_view::npos) {
            lines.emplace_back(body.substr(at));
            last_unterminated = true;
            break;
        }
        lines.emplace_back(body.substr(at, e - at));
        at = e + 2;
    }
    (void)last_unterminated;   // a last line without CRLF gets one in both forms
    if (canon == DkimCanon::relaxed) {
        for (auto& l : lines) {
            std::string r;
            bool wsp = false;
            for (const char c : l) {
                if (c == ' ' || c == '\t') {
                    wsp = true;
                    continue;
                }
                if (wsp) r += ' ';
                wsp = false;
                r += c;
            }
            l = r;   // a WSP run at the end is dropped with `wsp` left set
        }
    }
    while (!lines.empty() && lines.back().empty()) lines.pop_back();
    std::string out;
    for (const auto& l : lines) out += l + "\r\n";
    if (out.empty() && canon == DkimCanon::simple) out = "\r\n";
    return out;
}

}  // namespace

// RFC 6376 3.4.6, both canonicalizations of the example.
TEST(DkimCanon, Rfc6376Example) {
    const std::string a = "A: X\r\n";
    const std::string b = "B : Y\t\r\n\tZ  \r\n";
    EXPECT_EQ(canonicalize_header(DkimCanon::relaxed, a), "a:X\r\n");
    EXPECT_EQ(canonicalize_header(DkimCanon::relaxed, b), "b:Y Z\r\n");
    EXPECT_EQ(canonicalize_header(DkimCanon::simple, a), a);
    EXPECT_EQ(canonicalize_header(DkimCanon::simple, b), b);
    const std::string body = " C \r\nD \t E\r\n\r\n\r\n";
    EXPECT_EQ(canonicalize_body(DkimCanon::relaxed, body), " C\r\nD E\r\n");
    EXPECT_EQ(canonicalize_body(DkimCanon::simple, body), " C \r\nD \t E\r\n");
}

TEST(DkimCanon, RelaxedHeaderDetails) {
    EXPECT_EQ(canonicalize_header(DkimCanon::relaxed, "SUBJECT:\t  Hello   World \t\r\n"), "subject:Hello World\r\n");
    EXPECT_EQ(canonicalize_header(DkimCanon::relaxed, "To: a,\r\n b,\r\n\t c\r\n"), "to:a, b, c\r\n");
    EXPECT_EQ(canonicalize_header(DkimCanon::relaxed, "X-Empty:\r\n"), "x-empty:\r\n");
    EXPECT_EQ(canonicalize_header(DkimCanon::relaxed, "X-Empty:   \r\n  \r\n"), "x-empty:\r\n");
    // Bare LF line breaks unfold too; a bare CR is an ordinary octet.
    EXPECT_EQ(canonicalize_header(DkimCanon::relaxed, "A: x\n y\n"), "a:x y\r\n");
    EXPECT_EQ(canonicalize_header(DkimCanon::relaxed, "A: x\ry\r\n"), "a:x\ry\r\n");
    // Case of the value is kept.
    EXPECT_EQ(canonicalize_header(DkimCanon::relaxed, "Message-ID: <AbC@X>\r\n"), "message-id:<AbC@X>\r\n");
}

TEST(DkimCanon, BodyEdgeCases) {
    // Empty body: simple is one CRLF (3.4.3), relaxed is empty (3.4.4).
    EXPECT_EQ(canonicalize_body(DkimCanon::simple, ""), "\r\n");
    EXPECT_EQ(canonicalize_body(DkimCanon::relaxed, ""), "");
    // Only empty lines.
    EXPECT_EQ(canonicalize_body(DkimCanon::simple, "\r\n\r\n\r\n"), "\r\n");
    EXPECT_EQ(canonicalize_body(DkimCanon::relaxed, "\r\n\r\n\r\n"), "");
    // Lines of only WSP are empty for relaxed (trailing WSP removed) but content for simple.
    EXPECT_EQ(canonicalize_body(DkimCanon::relaxed, " \t\r\n  \r\n"), "");
    EXPECT_EQ(canonicalize_body(DkimCanon::simple, " \t\r\n  \r\n"), " \t\r\n  \r\n");
    EXPECT_EQ(canonicalize_body(DkimCanon::relaxed, "a\r\n \r\nb\r\n"), "a\r\n\r\nb\r\n");
    // Trailing WSP.
    EXPECT_EQ(canonicalize_body(DkimCanon::relaxed, "abc \t \r\nd\t\r\n"), "abc\r\nd\r\n");
    EXPECT_EQ(canonicalize_body(DkimCanon::simple, "abc \t \r\nd\t\r\n"), "abc \t \r\nd\t\r\n");
    // Leading WSP becomes one SP (relaxed), WSP runs inside one SP.
    EXPECT_EQ(canonicalize_body(DkimCanon::relaxed, "\t\t a  \t b\r\n"), " a b\r\n");
    // No CRLF at the end: one is added.
    EXPECT_EQ(canonicalize_body(DkimCanon::simple, "abc"), "abc\r\n");
    EXPECT_EQ(canonicalize_body(DkimCanon::relaxed, "abc  "), "abc\r\n");
    EXPECT_EQ(canonicalize_body(DkimCanon::simple, "abc\r\n\r\nx"), "abc\r\n\r\nx\r\n");
    EXPECT_EQ(canonicalize_body(DkimCanon::relaxed, "  "), "");
    // Empty lines inside the body are kept, only trailing ones go.
    EXPECT_EQ(canonicalize_body(DkimCanon::simple, "a\r\n\r\n\r\nb\r\n\r\n"), "a\r\n\r\n\r\nb\r\n");
    // Bare CR and LF are not line ends.
    EXPECT_EQ(canonicalize_body(DkimCanon::simple, "a\nb\r\n"), "a\nb\r\n");
    EXPECT_EQ(canonicalize_body(DkimCanon::simple, "a\r"), "a\r\r\n");
    EXPECT_EQ(canonicalize_body(DkimCanon::relaxed, "a \r b\r\n"), "a \r b\r\n");
    EXPECT_EQ(canonicalize_body(DkimCanon::relaxed, "\r"), "\r\r\n");
}

TEST(DkimCanon, VeryLongLinesAndManyEmptyLines) {
    std::string line(300000, 'x');
    for (std::size_t i = 0; i < line.size(); i += 7) line[i] = ' ';
    line += "   ";
    std::string empties;
    for (int i = 0; i < 200000; ++i) empties += "\r\n";
    const std::string b1 = line + "\r\n" + empties + "end\r\n" + empties;
    for (const auto c : {DkimCanon::simple, DkimCanon::relaxed}) {
        SCOPED_TRACE(to_string(c));
        const std::string expect = reference_body(c, b1);
        EXPECT_EQ(canonicalize_body(c, b1), expect);
        // Output comes in bounded chunks.
        std::size_t largest = 0, total = 0;
        const BodySink sink = [&](std::string_view s) {
            largest = std::max(largest, s.size());
            total += s.size();
        };
        BodyCanonicalizer bc(c);
        bc.feed(b1, sink);
        bc.finish(sink);
        EXPECT_LE(largest, BodyCanonicalizer::kBodyChunk);
        EXPECT_EQ(total, expect.size());
    }
}

TEST(DkimCanon, SplitAtEveryOffsetGivesTheSameOutput) {
    const std::string body = " C \r\nD \t E\r\n\r\n \r\n\r\nx\ry\nz  \t\r\n\r\n\r\n  ";
    for (const auto c : {DkimCanon::simple, DkimCanon::relaxed}) {
        const std::string whole = canonicalize_body(c, body);
        EXPECT_EQ(whole, reference_body(c, body));
        for (std::size_t i = 0; i <= body.size(); ++i) {
            EXPECT_EQ(canon_in_pieces(c, body, {i}), whole) << to_string(c) << " cut at " << i;
            BodyHasher h(c, std::nullopt);
            h.feed(std::string_view(body).substr(0, i));
            h.feed(std::string_view(body).substr(i));
            h.finish();
            EXPECT_EQ(h.digest(), sha256(whole)) << to_string(c) << " cut at " << i;
            for (std::size_t j = i; j <= body.size(); ++j)
                ASSERT_EQ(canon_in_pieces(c, body, {i, j}), whole) << to_string(c) << " cuts " << i << "," << j;
        }
        // One octet at a time.
        std::vector<std::size_t> every;
        for (std::size_t i = 1; i < body.size(); ++i) every.push_back(i);
        EXPECT_EQ(canon_in_pieces(c, body, every), whole);
    }
}

TEST(DkimCanon, RandomBodiesMatchTheReference) {
    std::mt19937 rng(6376);
    const std::string alphabet = "ab \t\r\n\r\n";
    for (int round = 0; round < 2000; ++round) {
        std::string body;
        const int n = static_cast<int>(rng() % 40);
        for (int i = 0; i < n; ++i) body += alphabet[rng() % alphabet.size()];
        std::vector<std::size_t> cuts;
        std::size_t at = 0;
        while (at < body.size()) {
            at += rng() % 5;
            if (at <= body.size()) cuts.push_back(at);
        }
        for (const auto c : {DkimCanon::simple, DkimCanon::relaxed})
            ASSERT_EQ(canon_in_pieces(c, body, cuts), reference_body(c, body)) << to_string(c) << " on " << body.size();
    }
}

TEST(DkimCanon, BodyHasherAndLength) {
    const std::string body = "Hi.\r\n\r\nWe lost the game.  Are you hungry yet?\r\n\r\nJoe.\r\n\r\n";
    BodyHasher all(DkimCanon::relaxed, std::nullopt);
    all.feed(body.substr(0, 10));
    all.feed(body.substr(10));
    all.finish();
    // RFC 8463 A.3's bh= for this body.
    EXPECT_EQ(base64_encode(all.digest()), "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=");
    EXPECT_EQ(all.canonical_length(), canonicalize_body(DkimCanon::relaxed, body).size());
    BodyHasher simple(DkimCanon::simple, std::nullopt);
    simple.feed(body);
    simple.finish();
    EXPECT_EQ(base64_encode(simple.digest()), "4bLNXImK9drULnmePzZNEBleUanJCX5PIsDIFoH4KTQ=");
    // l=: only the first l canonical octets are hashed; the length counts them all.
    BodyHasher limited(DkimCanon::simple, 5);
    limited.feed(body);
    limited.finish();
    EXPECT_EQ(limited.digest(), sha256("Hi.\r\n"));
    EXPECT_EQ(limited.canonical_length(), canonicalize_body(DkimCanon::simple, body).size());
    BodyHasher zero(DkimCanon::relaxed, 0);
    zero.feed(body);
    zero.finish();
    EXPECT_EQ(zero.digest(), sha256(""));
    // The empty body's hashes (RFC 6376 3.4.3 and 3.4.4).
    BodyHasher empty_simple(DkimCanon::simple, std::nullopt), empty_relaxed(DkimCanon::relaxed, std::nullopt);
    empty_simple.finish();
    empty_relaxed.finish();
    EXPECT_EQ(empty_simple.digest(), sha256("\r\n"));
    EXPECT_EQ(base64_encode(empty_simple.digest()), "frcCV1k9oG9oKj3dpUqdJg1PxRT2RSN/XKdLCPjaYaY=");
    EXPECT_EQ(base64_encode(empty_relaxed.digest()), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
}

TEST(DkimCanon, SignedHeaderDataSelectsBottomUp) {
    const std::string header =
        "Received: x\r\nFrom: first@example.com\r\nSubject: one\r\nFrom: second@example.com\r\nTo: t\r\n";
    const auto fields = mime::header_fields(header);
    // from:from:from takes the last From, then the first, then nothing (the third is null); subject once;
    // a name that does not occur contributes nothing.
    const std::string data = signed_header_data(DkimCanon::relaxed, fields, {"from", "From", "FROM", "subject", "cc"},
                                                "DKIM-Signature: v=1; b=\r\n");
    EXPECT_EQ(data, "from:second@example.com\r\nfrom:first@example.com\r\nsubject:one\r\ndkim-signature:v=1; b=");
    const std::string simple =
        signed_header_data(DkimCanon::simple, fields, {"to", "from"}, "DKIM-Signature: v=1;\r\n b=\r\n");
    EXPECT_EQ(simple, "To: t\r\nFrom: second@example.com\r\nDKIM-Signature: v=1;\r\n b=");
}
