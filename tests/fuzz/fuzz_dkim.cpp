// DKIM's parsers and canonicalizers on arbitrary input: DKIM-Signature tag validation, key records, base64,
// header and body canonicalization, b= removal, and (for some inputs) a sign-then-check round trip over the
// input taken as a message. The verifier's DNS part (dkim_verify.cpp, Boost) is not in the fuzz build; the round
// trip checks what it computes: the signing input rebuilt from the finished field, and the signature over it.
#include <openssl/evp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "mailauth/dkim_canon.hpp"
#include "mailauth/dkim_crypto.hpp"
#include "mailauth/dkim_key.hpp"
#include "mailauth/dkim_sign.hpp"
#include "mailauth/dkim_signature.hpp"
#include "mime/header.hpp"
#include "util/ascii.hpp"

using namespace ferry;
using namespace ferry::mailauth;

namespace {

bool contains(std::string_view hay, std::string_view needle) { return hay.find(needle) != std::string_view::npos; }

void check_signature_parse(std::string_view text) {
    const auto p = parse_dkim_signature(text);
    if (!p.ok()) {
        FUZZ_CHECK(!p.error.empty());
        return;
    }
    const DkimSignature& s = p.signature;
    // Every field comes out of the input.
    FUZZ_CHECK(!s.domain.empty() && contains(text, s.domain));
    FUZZ_CHECK(!s.selector.empty() && contains(text, s.selector));
    FUZZ_CHECK(contains(util::ascii_lower(text), s.algorithm_name));
    FUZZ_CHECK(s.identity.find('@') != std::string::npos && contains(text, s.identity.substr(s.identity.find('@') + 1)));
    FUZZ_CHECK(!s.signed_headers.empty());
    bool from = false;
    for (const auto& h : s.signed_headers) {
        FUZZ_CHECK(!h.empty() && contains(text, h));
        from = from || util::ascii_lower(h) == "from";
    }
    FUZZ_CHECK(from);
    FUZZ_CHECK(!s.signature.empty());
    // Equal up to the pad bits of the last quantum, which the decoder does not insist be zero (RFC 4648 3.5).
    FUZZ_CHECK(base64_encode(s.signature).size() == s.signature_b.size());
    FUZZ_CHECK(base64_decode(base64_encode(s.signature)) == s.signature);
    FUZZ_CHECK(is_same_or_subdomain(s.identity.substr(s.identity.rfind('@') + 1), s.domain));
    if (s.timestamp && s.expiration) FUZZ_CHECK(*s.expiration > *s.timestamp);
    FUZZ_CHECK(s.algorithm_name == to_string(s.algorithm));
}

void check_key_record(std::string_view text) {
    const auto r = parse_key_record(text);
    if (!r.ok()) return;
    FUZZ_CHECK(r.record.revoked == r.record.public_key.empty());
    const PkeyPtr key = record_public_key(r.record);
    if (key && r.record.key_type == DkimKeyType::ed25519) FUZZ_CHECK(r.record.public_key.size() == kEd25519KeySize);
    if (key && r.record.key_type == DkimKeyType::rsa) FUZZ_CHECK(key_bits(key.get()) > 0);
}

void check_base64(std::string_view text) {
    const auto d = base64_decode(text);
    if (!d) return;
    FUZZ_CHECK(d->size() == text.size() / 4 * 3 - (text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0));
    const std::string again = base64_encode(*d);
    FUZZ_CHECK(again.size() == text.size());
    FUZZ_CHECK(base64_decode(again) == d);
}

std::string body_in_pieces(DkimCanon canon, std::string_view body, std::size_t cut1, std::size_t cut2) {
    std::string out;
    const BodySink sink = [&out](std::string_view s) {
        FUZZ_CHECK(s.size() <= BodyCanonicalizer::kBodyChunk);
        out.append(s);
    };
    BodyCanonicalizer c(canon);
    c.feed(body.substr(0, cut1), sink);
    c.feed(body.substr(cut1, cut2 - cut1), sink);
    c.feed(body.substr(cut2), sink);
    c.finish(sink);
    return out;
}

void check_body(std::string_view body, std::size_t cut1, std::size_t cut2) {
    for (const auto canon : {DkimCanon::simple, DkimCanon::relaxed}) {
        const std::string whole = canonicalize_body(canon, body);
        // The split does not matter.
        FUZZ_CHECK(body_in_pieces(canon, body, cut1, cut2) == whole);
        BodyHasher h(canon, std::nullopt);
        h.feed(body.substr(0, cut1));
        h.feed(body.substr(cut1));
        h.finish();
        FUZZ_CHECK(h.digest() == sha256(whole));
        FUZZ_CHECK(h.canonical_length() == whole.size());
        BodyHasher limited(canon, cut1);
        limited.feed(body);
        limited.finish();
        FUZZ_CHECK(limited.digest() == sha256(std::string_view(whole).substr(0, cut1)));
        if (canon == DkimCanon::simple) {
            FUZZ_CHECK(whole.ends_with("\r\n"));   // an empty body is one CRLF
            FUZZ_CHECK(!whole.ends_with("\r\n\r\n"));
        } else {
            FUZZ_CHECK(whole.empty() || (whole.ends_with("\r\n") && !whole.ends_with("\r\n\r\n")));
            FUZZ_CHECK(!contains(whole, "  ") && !contains(whole, "\t") && !contains(whole, " \r\n"));
            FUZZ_CHECK(canonicalize_body(DkimCanon::relaxed, whole) == whole);   // idempotent
        }
        FUZZ_CHECK(whole.size() <= body.size() + 2);
    }
}

void check_headers(std::string_view header) {
    for (const auto& f : mime::header_fields(header)) {
        FUZZ_CHECK(canonicalize_header(DkimCanon::simple, f.raw) == f.raw);
        const std::string r = canonicalize_header(DkimCanon::relaxed, f.raw);
        FUZZ_CHECK(r.ends_with("\r\n"));
        const std::string_view inner = std::string_view(r).substr(0, r.size() - 2);
        FUZZ_CHECK(!contains(inner, "\r\n") && !contains(inner, "\n"));
        FUZZ_CHECK(!contains(r, "  ") && !contains(r, "\t") && !contains(r, " \r\n"));
        const std::size_t colon = r.find(':');
        FUZZ_CHECK(colon != std::string::npos);
        const std::string_view name = std::string_view(r).substr(0, colon);
        FUZZ_CHECK(util::ascii_lower(name) == name);
        FUZZ_CHECK(!name.ends_with(' ') && r[colon + 1] != ' ');
        FUZZ_CHECK(canonicalize_header(DkimCanon::relaxed, r) == r);   // idempotent
    }
}

// The fixed signing key of the round trip (RFC 8032 7.1 test 1): Ed25519 signs in microseconds.
const PkeyPtr& fuzz_key() {
    static const PkeyPtr key = [] {
        const auto seed = base64_decode("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=");
        return PkeyPtr(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr,
                                                    reinterpret_cast<const unsigned char*>(seed->data()), seed->size()),
                       EVP_PKEY_free);
    }();
    return key;
}

void check_round_trip(std::string_view message, DkimCanon hc, DkimCanon bc, std::size_t cut) {
    const std::string_view header = mime::header_section(message);
    // A header section cannot start with WSP: it would continue the prepended signature field.
    if (!header.empty() && (header.front() == ' ' || header.front() == '\t')) return;
    std::string_view body = message.substr(header.size());
    if (body.starts_with("\r\n")) body.remove_prefix(2);
    DkimSigningKey key{"example.com", "fuzz", DkimAlgorithm::ed25519_sha256, fuzz_key(), 256};
    DkimSigner signer(key, {hc, bc, {}}, header);
    cut = std::min(cut, body.size());
    signer.feed_body(body.substr(0, cut));
    signer.feed_body(body.substr(cut));
    const std::string field = signer.finish(1700000000);
    FUZZ_CHECK(field.starts_with("DKIM-Signature: v=1; a=ed25519-sha256;") && field.ends_with("\r\n"));
    const std::string signed_header = field + std::string(header);
    const auto fields = mime::header_fields(signed_header);
    FUZZ_CHECK(!fields.empty() && fields[0].raw == field);
    const auto parsed = parse_dkim_signature(field.substr(field.find(':') + 1));
    FUZZ_CHECK(parsed.ok());
    const DkimSignature& s = parsed.signature;
    FUZZ_CHECK(s.header_canon == hc && s.body_canon == bc && s.timestamp == 1700000000 && !s.body_length);
    BodyHasher bh(bc, std::nullopt);
    bh.feed(body);
    bh.finish();
    FUZZ_CHECK(bh.digest() == s.body_hash);
    const std::string data = signed_header_data(hc, fields, s.signed_headers, remove_b_value(fields[0].raw));
    FUZZ_CHECK(verify_digest(fuzz_key().get(), DkimAlgorithm::ed25519_sha256, sha256(data), s.signature));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = fuzz::as_text(data, size);
    check_signature_parse(text);
    check_key_record(text);
    check_base64(text);
    const std::size_t cut1 = size ? data[0] % (size + 1) : 0;
    const std::size_t cut2 = size ? cut1 + data[size - 1] % (size - cut1 + 1) : 0;
    check_body(text, cut1, cut2);
    check_headers(text);
    const std::string removed = remove_b_value(text);
    FUZZ_CHECK(removed.size() <= size && remove_b_value(removed) == removed);
    if (size >= 1 && (data[0] & 3) == 0)
        check_round_trip(text, data[0] & 4 ? DkimCanon::relaxed : DkimCanon::simple,
                         data[0] & 8 ? DkimCanon::relaxed : DkimCanon::simple, cut1 / 2);
    return 0;
}
