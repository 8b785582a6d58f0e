#include "mailauth/dkim_canon.hpp"

#include <algorithm>
#include <unordered_map>

#include "util/ascii.hpp"

namespace ferry::mailauth {
namespace {

using util::is_wsp;

// Appends `text` unfolded, with WSP runs as one SP and no WSP at either end (RFC 6376 3.4.2). A CRLF, or a
// bare LF, is a line break and disappears; a CR not followed by LF is kept as an ordinary octet.
void append_relaxed(std::string_view text, std::string& out) {
    bool pending_wsp = false;
    bool started = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '\n') continue;
        if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
            ++i;
            continue;
        }
        if (is_wsp(c)) {
            pending_wsp = true;
            continue;
        }
        if (pending_wsp && started) out += ' ';
        pending_wsp = false;
        started = true;
        out += c;
    }
}

}  // namespace

std::string_view to_string(DkimCanon c) { return c == DkimCanon::simple ? "simple" : "relaxed"; }

std::string canonicalize_header(DkimCanon canon, std::string_view raw) {
    if (canon == DkimCanon::simple) return std::string(raw);
    const std::size_t colon = raw.find(':');
    const std::string_view name = raw.substr(0, colon);
    std::string out;
    out.reserve(raw.size() + 2);
    append_relaxed(name, out);
    out = util::ascii_lower(out);
    out += ':';
    if (colon != std::string_view::npos) append_relaxed(raw.substr(colon + 1), out);
    out += "\r\n";
    return out;
}

// --- body ---

void BodyCanonicalizer::flush(const BodySink& sink) {
    if (buf_.empty()) return;
    sink(buf_);
    buf_.clear();
}

void BodyCanonicalizer::put(std::string_view s, const BodySink& sink) {
    if (s.empty()) return;
    emitted_ = true;
    if (buf_.size() + s.size() > kBodyChunk) flush(sink);
    while (s.size() > kBodyChunk) {   // a long run of the input goes out as it is, without a copy
        sink(s.substr(0, kBodyChunk));
        s.remove_prefix(kBodyChunk);
    }
    buf_.append(s);
}

// Before an octet of content: the empty lines held back are inside the body after all, and a WSP run inside a
// line is one SP (relaxed).
void BodyCanonicalizer::content(const BodySink& sink) {
    for (; pending_empty_lines_ > 0; --pending_empty_lines_) put("\r\n", sink);
    if (pending_wsp_) put(" ", sink);
    pending_wsp_ = false;
    line_has_content_ = true;
}

// A CRLF: WSP before it goes (relaxed); an empty line is held back, since empty lines at the end of the body are
// not part of either canonical form (3.4.3, 3.4.4).
void BodyCanonicalizer::end_of_line(const BodySink& sink) {
    pending_wsp_ = false;
    if (line_has_content_) {
        put("\r\n", sink);
        line_has_content_ = false;
    } else {
        ++pending_empty_lines_;
    }
}

void BodyCanonicalizer::feed(std::string_view in, const BodySink& sink) {
    if (finished_) return;
    const bool relaxed = canon_ == DkimCanon::relaxed;
    for (std::size_t i = 0; i < in.size(); ++i) {
        const char c = in[i];
        if (pending_cr_) {
            pending_cr_ = false;
            if (c == '\n') {
                end_of_line(sink);
                continue;
            }
            content(sink);   // the CR was a bare one
            put("\r", sink);
        }
        if (c == '\r') {
            pending_cr_ = true;
            continue;
        }
        if (relaxed && is_wsp(c)) {
            pending_wsp_ = true;
            continue;
        }
        // A run of ordinary octets goes out in one append.
        std::size_t j = i + 1;
        while (j < in.size() && in[j] != '\r' && !(relaxed && is_wsp(in[j]))) ++j;
        content(sink);
        put(in.substr(i, j - i), sink);
        i = j - 1;
    }
    flush(sink);
}

void BodyCanonicalizer::finish(const BodySink& sink) {
    if (finished_) return;
    finished_ = true;
    if (pending_cr_) {
        pending_cr_ = false;
        content(sink);
        put("\r", sink);
    }
    pending_wsp_ = false;   // WSP at the end of the last line
    if (line_has_content_) put("\r\n", sink);   // a last line without CRLF gets one
    line_has_content_ = false;
    pending_empty_lines_ = 0;                    // trailing empty lines are dropped
    if (!emitted_ && canon_ == DkimCanon::simple) put("\r\n", sink);   // 3.4.3: an empty body is one CRLF
    flush(sink);
}

std::string canonicalize_body(DkimCanon canon, std::string_view body) {
    std::string out;
    const BodySink sink = [&out](std::string_view s) { out.append(s); };
    BodyCanonicalizer c(canon);
    c.feed(body, sink);
    c.finish(sink);
    return out;
}

BodyHasher::BodyHasher(DkimCanon canon) : canon_(canon), canonicalizer_(canon) {}

std::size_t BodyHasher::add_limit(std::optional<std::uint64_t> limit) {
    for (std::size_t i = 0; i < digests_.size(); ++i)
        if (digests_[i].limit == limit) return i;
    digests_.push_back(Digest{limit, Sha256(), ""});
    return digests_.size() - 1;
}

void BodyHasher::hash(std::string_view canonical) {
    for (Digest& d : digests_) {
        if (!d.limit) d.sha.update(canonical);
        else if (length_ < *d.limit)
            d.sha.update(canonical.substr(0, static_cast<std::size_t>(std::min<std::uint64_t>(*d.limit - length_, canonical.size()))));
    }
    length_ += canonical.size();
}

void BodyHasher::feed(std::string_view octets) {
    if (finished_) return;
    canonicalizer_.feed(octets, [this](std::string_view s) { hash(s); });
}

void BodyHasher::finish() {
    if (finished_) return;
    canonicalizer_.finish([this](std::string_view s) { hash(s); });
    for (Digest& d : digests_) d.digest = d.sha.final();
    finished_ = true;
}

// --- the header data of a signature ---

std::string signed_header_data(DkimCanon canon, const std::vector<mime::RawField>& fields,
                               const std::vector<std::string>& signed_names, std::string_view signature_field) {
    // Fields by lower-case name, in header order; each h= name takes the last one left (5.4.2). An index keeps
    // this linear: h= and the header may each hold thousands of names.
    std::unordered_map<std::string, std::vector<std::size_t>> by_name;
    for (std::size_t i = 0; i < fields.size(); ++i)
        if (!fields[i].name.empty()) by_name[util::ascii_lower(fields[i].name)].push_back(i);
    std::string out;
    for (const auto& name : signed_names) {
        const auto it = by_name.find(util::ascii_lower(name));
        if (it == by_name.end() || it->second.empty()) continue;   // nonexistent: hashed as null (5.4)
        out += canonicalize_header(canon, fields[it->second.back()].raw);
        it->second.pop_back();
    }
    std::string sig = canonicalize_header(canon, signature_field);
    if (sig.ends_with("\r\n")) sig.resize(sig.size() - 2);
    else if (sig.ends_with('\n')) sig.pop_back();
    out += sig;
    return out;
}

}  // namespace ferry::mailauth
