// The DKIM verifier (RFC 6376 6): every DKIM-Signature field of a message checked on its own, the body hashed
// as it streams past, key records asked of DNS (RFC 6376 3.6.2, RFC 8463 4). Never throws for message or DNS
// content: every problem is an outcome.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <vector>

#include "dns/lookup.hpp"
#include "mailauth/dkim_canon.hpp"
#include "mailauth/dkim_signature.hpp"
#include "mailauth/results.hpp"

namespace ferry::mailauth {

// How many signatures of one message get a key lookup, a body hash and a signature check. Each costs a DNS
// query (its timeout, when a hostile domain does not answer), an RSA operation and a SHA-256 of the body (the
// canonicalization, at most one pass per c= body form, is shared); RFC 6376 6.1 lets a verifier limit the number
// it verifies. Real mail carries one to three (author domain, ESP, mailing list); 10 leaves room for forwarding
// chains while keeping a message's cost bounded. The limit counts only signatures that pass the syntax checks:
// junk fields cost nothing and cannot push a real signature out. Signatures past the limit get permerror,
// reason "not verified: more than 10 signatures".
inline constexpr std::size_t kMaxSignaturesVerified = 10;

// A t= up to this far in the future is accepted (the signer's clock may run ahead a little; RFC 6376 3.5 lets
// verifiers ignore future timestamps). Later: fail, "signature timestamp t= is in the future". x= gets no grace:
// a signature whose x= has passed fails ("signature expired").
inline constexpr std::int64_t kMaxClockSkew = 300;   // seconds

class DkimVerifier {
public:
    // header_section: as received, each field ending CRLF, without the empty line.
    explicit DkimVerifier(std::string_view header_section);
    // The body after the empty line, in pieces of any size.
    void feed_body(std::string_view octets);
    // At least one DKIM-Signature field (valid or not).
    bool signed_message() const { return !signatures_.empty(); }
    // After the whole body is fed: one outcome per DKIM-Signature field, in header order; empty when unsigned.
    // Key records are asked for in parallel, each distinct name once. Feeding more body afterwards is ignored.
    boost::asio::awaitable<std::vector<DkimOutcome>> verify(dns::Lookup& dns, std::time_t now);

private:
    struct Signature {
        std::size_t field = 0;       // index among the header's fields
        DkimSignatureParse parsed;
        bool within_limit = false;   // gets a key lookup and the checks
        std::size_t body = 0;        // index into bodies_
        std::size_t digest = 0;      // which of that hasher's digests (its l=)
    };

    std::string header_;
    std::vector<Signature> signatures_;
    std::vector<BodyHasher> bodies_;   // one per body canonicalization in use, with a digest per distinct l=
    bool body_finished_ = false;
};

}  // namespace ferry::mailauth
