// The DKIM signer (RFC 6376 5): the DKIM-Signature fields of a message, its body fed in pieces. Pure apart
// from OpenSSL: no I/O, no clock (the caller passes the time).
#pragma once

#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "mailauth/dkim_canon.hpp"
#include "mailauth/dkim_key.hpp"

namespace ferry::mailauth {

// RFC 5322 2.1.1: lines SHOULD be no longer than 78 octets before the CRLF. (A d= or header name longer than a
// line cannot be folded and makes its line longer.)
inline constexpr std::size_t kMaxSignatureLine = 78;

struct DkimSignOptions {
    DkimCanon header_canon = DkimCanon::relaxed, body_canon = DkimCanon::relaxed;
    std::vector<std::string> headers;   // names of fields to sign; empty: kDefaultSignedHeaders
};

// Fields a signature should cover (RFC 6376 5.4.1's list, with the List-* fields of RFC 2919 and RFC 8058 added).
inline const std::vector<std::string>& default_signed_headers() {
    static const std::vector<std::string> names = {
        "From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References", "Reply-To", "Sender",
        "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Content-ID", "Content-Description",
        "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post"};
    return names;
}

// The h= list for a header: each name (duplicates in `names` count once) as many times as a field of that name
// occurs, absent ones left out, From always and once more than it occurs (oversigning, 5.4.2: no From can be
// added without breaking the signature). Names are written in lower case. Received, Return-Path,
// DKIM-Signature and Authentication-Results are never signed: relays add and remove them (5.4.1, RFC 8601 5).
std::vector<std::string> signed_header_names(const std::vector<mime::RawField>& fields,
                                             const std::vector<std::string>& names);

class DkimSigner {
public:
    // header_section: the message's header fields exactly as they will be sent, each ending in CRLF, without
    // the empty line. Every key signs the same fields and body, which is canonicalized and hashed once: an RSA
    // and an Ed25519 key side by side (RFC 8463 5) cost one pass over the body.
    DkimSigner(std::vector<DkimSigningKey> keys, DkimSignOptions options, std::string_view header_section);
    DkimSigner(DkimSigningKey key, DkimSignOptions options, std::string_view header_section)
        : DkimSigner(std::vector<DkimSigningKey>{std::move(key)}, std::move(options), header_section) {}
    // The body after the empty line, in pieces of any size.
    void feed_body(std::string_view octets);
    // One whole field per key, in the keys' order: "DKIM-Signature: v=1; a=...; b=...\r\n", folded so that no
    // line passes kMaxSignatureLine octets: v a c d s t h bh b, t= set to `now`, no i=, l=, x= or q=. Call once,
    // after the whole body. A key OpenSSL fails to sign with (not one load_signing_key returns, short of memory)
    // adds nothing.
    std::string finish(std::time_t now);

private:
    std::vector<DkimSigningKey> keys_;
    DkimSignOptions options_;
    std::string header_;
    std::vector<std::string> signed_names_;
    BodyHasher body_;
};

}  // namespace ferry::mailauth
