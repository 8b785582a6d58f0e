// DKIM canonicalization (RFC 6376 3.4): header fields, one at a time, and the body as a stream with bounded
// memory; and the header data a signature covers (RFC 6376 3.7, 5.4.2). Pure: text in, text out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mailauth/dkim_crypto.hpp"
#include "mime/header.hpp"

namespace ferry::mailauth {

enum class DkimCanon { simple, relaxed };

std::string_view to_string(DkimCanon c);

// One header field, its raw form as mime::header_fields gives it (name, colon, value, folding and the final line
// break). simple (3.4.1): unchanged. relaxed (3.4.2): the name in lower case, unfolded, every WSP run one SP, no
// WSP at the end of the value or around the colon, then CRLF. A line break inside the raw text (CRLF, or a bare
// LF, which header_fields also ends lines at) is unfolded.
std::string canonicalize_header(DkimCanon canon, std::string_view raw_field);

// Receives canonical body octets, in pieces of at most kBodyChunk octets.
using BodySink = std::function<void(std::string_view)>;

// The body (3.4.3 simple, 3.4.4 relaxed), fed in pieces of any size; the output does not depend on where the
// pieces are cut. Memory: one buffer of kBodyChunk octets, a count of pending empty lines and a few flags,
// whatever the body (a run of a million empty lines followed by text comes out in chunks). Only CRLF ends a
// line; a bare CR or LF is an ordinary octet (SMTP in Ferry refuses them; this keeps verification exact).
class BodyCanonicalizer {
public:
    static constexpr std::size_t kBodyChunk = 64 * 1024;

    explicit BodyCanonicalizer(DkimCanon canon) : canon_(canon) {}
    // Passes the canonical form of what can be decided so far to `sink`.
    void feed(std::string_view octets, const BodySink& sink);
    // The end of the body: passes on what was held back (simple: "\r\n" for an empty body; relaxed: nothing
    // for an empty one). Feeding after finish is ignored.
    void finish(const BodySink& sink);

private:
    void content(const BodySink& sink);
    void end_of_line(const BodySink& sink);
    void put(std::string_view s, const BodySink& sink);
    void flush(const BodySink& sink);

    DkimCanon canon_;
    std::string buf_;
    std::uint64_t pending_empty_lines_ = 0;   // empty lines seen, emitted only when content follows them
    bool pending_cr_ = false;                 // a CR that may start a CRLF
    bool pending_wsp_ = false;                // relaxed: a WSP run not yet known to be inside the line
    bool line_has_content_ = false;
    bool emitted_ = false;                    // anything output yet
    bool finished_ = false;
};

// The SHA-256 of a canonical body, fed in pieces: the bh= of RFC 6376 3.7, over at most `limit` canonical
// octets when l= is given (3.5). One canonicalization serves several limits: signatures that differ only in l=
// cost one pass over the body.
class BodyHasher {
public:
    BodyHasher(DkimCanon canon, std::optional<std::uint64_t> limit) : BodyHasher(canon) { add_limit(limit); }
    // No digest until add_limit() asks for one.
    explicit BodyHasher(DkimCanon canon);
    // One more digest from the same pass over the body: of its first `limit` canonical octets (l=), or of all of
    // it. Returns the digest's index, an existing one's for a limit already asked for. Before the body is fed.
    std::size_t add_limit(std::optional<std::uint64_t> limit);
    void feed(std::string_view octets);
    void finish();
    // After finish(): the digest of the first min(limit, length) canonical octets, for the i-th limit.
    const std::string& digest(std::size_t i = 0) const { return digests_[i].digest; }
    // The canonical body's whole length (counted past every limit, so a body shorter than l= shows).
    std::uint64_t canonical_length() const { return length_; }
    DkimCanon canon() const { return canon_; }

private:
    struct Digest {
        std::optional<std::uint64_t> limit;
        Sha256 sha;
        std::string digest;
    };
    void hash(std::string_view canonical);

    DkimCanon canon_;
    BodyCanonicalizer canonicalizer_;
    std::vector<Digest> digests_;
    std::uint64_t length_ = 0;
    bool finished_ = false;
};

// The canonical body of a whole message (for tests and tools).
std::string canonicalize_body(DkimCanon canon, std::string_view body);

// The header data a signature's hash covers (RFC 6376 3.7): for each name of h=, in order, the last field of
// that name not taken yet (5.4.2: from the bottom up; a name with no field left contributes nothing, so an
// oversigned name keeps fields from being added), canonicalized; then the DKIM-Signature field itself with its
// b= value emptied (`signature_field`, raw, see remove_b_value), canonicalized and without its final CRLF.
// Names compare case-insensitively.
std::string signed_header_data(DkimCanon canon, const std::vector<mime::RawField>& fields,
                               const std::vector<std::string>& signed_names, std::string_view signature_field);

}  // namespace ferry::mailauth
