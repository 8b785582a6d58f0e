#include "mailauth/dkim_verify.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <map>
#include <optional>

#include "dns/resolver.hpp"
#include "dns/wire.hpp"
#include "mailauth/dkim_key.hpp"
#include "util/ascii.hpp"

// g++ 12 reports Asio's coroutine frames here as freed by a mismatched operator delete: the frame's own
// operator new/delete pair (a thread-local recycling allocator) seen through inlining, as in
// delivery/smtp_client.cpp. ASan's alloc-dealloc-mismatch check finds no such mismatch.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace ferry::mailauth {
namespace asio = boost::asio;

namespace {

bool is_signature_field(std::string_view name) { return util::ascii_lower(name) == "dkim-signature"; }

// RFC 6376 3.6.2.1: the key of selector s= for domain d= is a TXT record at <s>._domainkey.<d>.
std::string key_name(const DkimSignature& sig) {
    return util::ascii_lower(sig.selector) + "._domainkey." + util::ascii_lower(sig.domain);
}

std::string_view value_of(std::string_view raw_field) {
    const std::size_t colon = raw_field.find(':');
    return colon == std::string_view::npos ? std::string_view() : raw_field.substr(colon + 1);
}

struct KeyLookup {
    DkimResult result = DkimResult::pass;   // pass: `record` holds the key
    std::string reason;
    DkimKeyRecord record;
};

// The key type a signature's a= needs (RFC 6376 3.3, RFC 8463 3).
DkimKeyType key_type_for(DkimAlgorithm algorithm) {
    return algorithm == DkimAlgorithm::rsa_sha256 ? DkimKeyType::rsa : DkimKeyType::ed25519;
}

// 3.6.2.2: the TXT record's strings are joined. Several records at one name are undefined by the RFC, but a domain
// moving to Ed25519 (RFC 8463) or rotating keys may publish an RSA and an Ed25519 record at one selector: the first
// record whose k= fits the signature's a= is taken. Records that do not read as key records are skipped (often
// unrelated TXT data). With none that fits, the first key record is returned (check_key then reports the k=/a=
// mismatch); with no key record at all, the first record's syntax error.
KeyLookup read_key(const dns::Answer& answer, DkimAlgorithm algorithm) {
    KeyLookup k;
    switch (answer.status) {
    case dns::Answer::Status::temporary:
        k.result = DkimResult::temperror;
        k.reason = "key lookup failed: " + (answer.why.empty() ? std::string("temporary DNS failure") : answer.why);
        return k;
    case dns::Answer::Status::nxdomain:
    case dns::Answer::Status::no_data:
        k.result = DkimResult::permerror;
        k.reason = "no key for signature";
        return k;
    case dns::Answer::Status::data:
        break;
    }
    std::optional<DkimKeyRecord> first_record;
    std::string first_error;
    for (const auto& rdata : answer.rdata) {
        const auto text = dns::parse_txt(rdata);
        if (!text) continue;
        auto parsed = parse_key_record(*text);
        if (!parsed.ok()) {
            if (first_error.empty()) first_error = parsed.error;
            continue;
        }
        if (parsed.record.key_type == key_type_for(algorithm)) {
            k.record = std::move(parsed.record);
            return k;
        }
        if (!first_record) first_record = std::move(parsed.record);
    }
    if (first_record) {
        k.record = std::move(*first_record);
        return k;
    }
    k.result = DkimResult::permerror;
    k.reason = first_error.empty() ? "no key for signature" : first_error;
    return k;
}

struct Check {
    DkimResult result;
    std::string reason;
};

// RFC 6376 6.1.2 (the key fits the signature) and RFC 8301 3.2 (its size).
Check check_key(const DkimSignature& sig, const DkimKeyRecord& key, PkeyPtr& pkey) {
    if (key.revoked) return {DkimResult::permerror, "key revoked"};
    const bool rsa = sig.algorithm == DkimAlgorithm::rsa_sha256;
    if ((key.key_type == DkimKeyType::rsa) != rsa)
        return {DkimResult::permerror, std::string("key type k=") + (rsa ? "ed25519" : "rsa") + " does not match a=" +
                                           sig.algorithm_name};
    if (!key.allows_sha256()) return {DkimResult::permerror, "key record h= does not allow sha256"};
    if (key.strict_identity) {
        const std::size_t at = sig.identity.rfind('@');
        const std::string_view idomain = std::string_view(sig.identity).substr(at == std::string::npos ? 0 : at + 1);
        if (util::ascii_lower(idomain) != util::ascii_lower(sig.domain))
            return {DkimResult::permerror, "key flag t=s: i= domain must equal d="};
    }
    pkey = record_public_key(key);
    if (!pkey) return {DkimResult::permerror, std::string("key record syntax: p= is not an ") + (rsa ? "RSA" : "Ed25519") + " key"};
    if (rsa && key_bits(pkey.get()) < kMinRsaBits) return {DkimResult::permerror, "RSA key under 1024 bits, RFC 8301"};
    return {DkimResult::pass, ""};
}

DkimOutcome outcome_for(const DkimSignature& sig) {
    DkimOutcome o;
    o.domain = sig.domain;
    o.selector = sig.selector;
    o.identity = sig.identity;
    o.algorithm = sig.algorithm_name;
    o.signature_b = sig.signature_b;
    return o;
}

}  // namespace

DkimVerifier::DkimVerifier(std::string_view header_section) : header_(header_section) {
    const auto fields = mime::header_fields(header_);
    std::size_t verified = 0;
    for (std::size_t i = 0; i < fields.size(); ++i) {
        if (fields[i].name.empty() || !is_signature_field(fields[i].name)) continue;
        Signature s;
        s.field = i;
        s.parsed = parse_dkim_signature(value_of(fields[i].raw));
        if (s.parsed.ok() && verified < kMaxSignaturesVerified) {
            ++verified;
            s.within_limit = true;
            // Signatures with the same body canonicalization share one pass over the body, whatever their l=.
            const DkimSignature& sig = s.parsed.signature;
            std::size_t b = 0;
            while (b < bodies_.size() && bodies_[b].canon() != sig.body_canon) ++b;
            if (b == bodies_.size()) bodies_.emplace_back(sig.body_canon);
            s.body = b;
            s.digest = bodies_[b].add_limit(sig.body_length);
        }
        signatures_.push_back(std::move(s));
    }
}

void DkimVerifier::feed_body(std::string_view octets) {
    if (body_finished_) return;
    for (auto& b : bodies_) b.feed(octets);
}

asio::awaitable<std::vector<DkimOutcome>> DkimVerifier::verify(dns::Lookup& dns, std::time_t now) {
    if (!body_finished_) {
        for (auto& b : bodies_) b.finish();
        body_finished_ = true;
    }
    std::vector<DkimOutcome> outcomes;
    outcomes.reserve(signatures_.size());
    std::vector<bool> needs_key(signatures_.size(), false);

    // 6.1.1: what can be decided without DNS.
    for (std::size_t i = 0; i < signatures_.size(); ++i) {
        const Signature& s = signatures_[i];
        const DkimSignature& sig = s.parsed.signature;
        DkimOutcome o = outcome_for(sig);
        if (!s.parsed.ok()) {
            o.result = DkimResult::permerror;
            o.reason = s.parsed.error;
        } else if (!s.within_limit) {
            o.result = DkimResult::permerror;
            o.reason = "not verified: more than " + std::to_string(kMaxSignaturesVerified) + " signatures";
        } else if (sig.expiration && static_cast<std::int64_t>(now) > *sig.expiration) {
            o.result = DkimResult::fail;
            o.reason = "signature expired";
        } else if (sig.timestamp && *sig.timestamp > static_cast<std::int64_t>(now) + kMaxClockSkew) {
            o.result = DkimResult::fail;
            o.reason = "signature timestamp t= is in the future";
        } else {
            needs_key[i] = true;
        }
        outcomes.push_back(std::move(o));
    }

    // 6.1.2: the keys, each distinct name asked once, all at the same time.
    std::map<std::string, std::size_t> name_index;
    std::vector<std::string> names;
    for (std::size_t i = 0; i < signatures_.size(); ++i) {
        if (!needs_key[i]) continue;
        const std::string name = key_name(signatures_[i].parsed.signature);
        if (name_index.emplace(name, names.size()).second) names.push_back(name);
    }
    std::vector<dns::Answer> answers(names.size());
    if (!names.empty()) {
        const auto executor = co_await asio::this_coro::executor;
        using Op = decltype(asio::co_spawn(executor, dns.query(std::string(), dns::kTypeTxt), asio::deferred));
        std::vector<Op> ops;
        ops.reserve(names.size());
        for (const auto& name : names) ops.push_back(asio::co_spawn(executor, dns.query(name, dns::kTypeTxt), asio::deferred));
        auto [order, errors, results] = co_await asio::experimental::make_parallel_group(std::move(ops))
                                            .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
        for (std::size_t n = 0; n < names.size(); ++n) {
            if (errors[n]) {   // Lookup promises not to throw; if it does, the failure is still temporary
                answers[n].status = dns::Answer::Status::temporary;
                answers[n].why = "DNS lookup failed";
            } else {
                answers[n] = std::move(results[n]);
            }
        }
    }

    const auto fields = mime::header_fields(header_);
    for (std::size_t i = 0; i < signatures_.size(); ++i) {
        if (!needs_key[i]) continue;
        const Signature& s = signatures_[i];
        const DkimSignature& sig = s.parsed.signature;
        DkimOutcome& o = outcomes[i];
        const KeyLookup key = read_key(answers[name_index.at(key_name(sig))], sig.algorithm);
        if (key.result != DkimResult::pass) {
            o.result = key.result;
            o.reason = key.reason;
            continue;
        }
        o.testing = key.record.testing;
        PkeyPtr pkey;
        const Check k = check_key(sig, key.record, pkey);
        if (k.result != DkimResult::pass) {
            o.result = k.result;
            o.reason = k.reason;
            continue;
        }
        // 6.1.3: the body hash, then the signature over the header data.
        const BodyHasher& body = bodies_[s.body];
        if (sig.body_length && body.canonical_length() < *sig.body_length) {
            o.result = DkimResult::fail;
            o.reason = "body shorter than l=";
            continue;
        }
        if (body.digest(s.digest) != sig.body_hash) {
            o.result = DkimResult::fail;
            o.reason = "body hash did not verify";
            continue;
        }
        // The field being verified is hashed last, with b= emptied (3.7), and never as one of h='s fields: a
        // signer cannot have seen it there (an h= naming DKIM-Signature one time more than older signatures
        // exist must find nothing, as at signing).
        std::vector<mime::RawField> others = fields;
        others.erase(others.begin() + static_cast<std::ptrdiff_t>(s.field));
        const std::string data =
            signed_header_data(sig.header_canon, others, sig.signed_headers, remove_b_value(fields[s.field].raw));
        if (!verify_digest(pkey.get(), sig.algorithm, sha256(data), sig.signature)) {
            o.result = DkimResult::fail;
            o.reason = "signature did not verify";
            continue;
        }
        o.result = DkimResult::pass;
        o.reason.clear();
    }
    co_return outcomes;
}

}  // namespace ferry::mailauth
