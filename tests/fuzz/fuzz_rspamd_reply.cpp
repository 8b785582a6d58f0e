// rspamd's /checkv2 replies (the rspamd client hands the body of a 200 in): parse_rspamd_reply never crashes, and
// what it yields is safe to apply: reply codes of the right class, field names and values that cannot start a
// field of their own, bounded sizes.
#include <cstddef>
#include <cstdint>

#include "filter/rspamd_reply.hpp"
#include "fuzz_check.hpp"

using namespace ferry;

namespace {

bool valid_name(const std::string& n) {
    if (n.empty() || n.size() > 126) return false;
    for (unsigned char c : n)
        if (c <= 0x20 || c >= 0x7f || c == ':') return false;
    return true;
}

// Every CR or LF in a value is part of a fold: CRLF or LF followed by SP or HTAB.
bool folds_only(const std::string& v) {
    for (std::size_t i = 0; i < v.size(); ++i) {
        const char c = v[i];
        if (c == '\r') {
            if (i + 2 >= v.size() || v[i + 1] != '\n' || (v[i + 2] != ' ' && v[i + 2] != '\t')) return false;
            ++i;
        } else if (c == '\n') {
            if (i + 1 >= v.size() || (v[i + 1] != ' ' && v[i + 1] != '\t')) return false;
        } else if (c == '\0') {
            return false;
        }
    }
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const config::RspamdSettings settings;
    const auto r = filter::parse_rspamd_reply(fuzz::as_text(data, size), settings, size % 64);
    if (!r.ok()) {
        FUZZ_CHECK(r.error.size() <= 512);
        return 0;
    }
    const auto& v = r.verdict;
    using A = filter::Decision::Action;
    const auto a = v.decision.action;
    FUZZ_CHECK(a == A::proceed || a == A::reject || a == A::tempfail || a == A::discard);
    if (a == A::reject || a == A::tempfail) {
        FUZZ_CHECK(v.decision.reply.has_value());
        const auto& reply = *v.decision.reply;
        FUZZ_CHECK(reply.code == (a == A::reject ? 550 : 451));
        FUZZ_CHECK(reply.lines.size() == 1 && !reply.lines[0].empty());
        FUZZ_CHECK(reply.lines[0].size() <= filter::kMaxRspamdReplyText);
        for (unsigned char c : reply.lines[0]) FUZZ_CHECK(c >= 0x20 && c < 0x7f);
        FUZZ_CHECK(v.header_edits.empty());
    }
    // The milter block's edits, our own six X-Spam-* edits, the Subject change and rspamd's DKIM signatures.
    FUZZ_CHECK(v.header_edits.size() <= filter::kMaxRspamdHeaderEdits + 7 + filter::kMaxRspamdDkimSignatures);
    for (const auto& e : v.header_edits) {
        FUZZ_CHECK(valid_name(e.name));
        FUZZ_CHECK(e.value.size() <= filter::kMaxRspamdHeaderValue);
        FUZZ_CHECK(folds_only(e.value));
        FUZZ_CHECK(e.index >= -1'000'000 && e.index <= 1'000'000);
        if (e.kind == filter::HeaderEdit::Kind::insert) FUZZ_CHECK(e.index >= 0);
        if (e.kind == filter::HeaderEdit::Kind::change) FUZZ_CHECK(!e.value.empty());
    }
    FUZZ_CHECK(v.summary.size() <= 1024);
    return 0;
}
