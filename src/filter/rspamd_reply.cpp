#include "filter/rspamd_reply.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>
#include <vector>

#include "util/ascii.hpp"

namespace ferry::filter {
namespace {

namespace json = boost::json;

const json::value* member(const json::object& o, std::string_view key) {
    auto it = o.find(key);
    return it == o.end() ? nullptr : &it->value();
}

std::optional<double> number(const json::value* v) {
    if (v == nullptr) return std::nullopt;
    double d;
    if (v->is_double()) d = v->get_double();
    else if (v->is_int64()) d = static_cast<double>(v->get_int64());
    else if (v->is_uint64()) d = static_cast<double>(v->get_uint64());
    else return std::nullopt;
    if (!std::isfinite(d)) return std::nullopt;
    return d;
}

std::optional<long> integer(const json::value* v) {
    if (v == nullptr) return std::nullopt;
    // Positions beyond any header section are clamped: HeaderEdit treats "past the end" as the end.
    constexpr std::int64_t limit = 1'000'000;
    if (v->is_int64()) return static_cast<long>(std::clamp<std::int64_t>(v->get_int64(), -limit, limit));
    if (v->is_uint64()) return static_cast<long>(std::min<std::uint64_t>(v->get_uint64(), limit));
    if (v->is_double() && std::isfinite(v->get_double()))
        return static_cast<long>(std::clamp(v->get_double(), -1e6, 1e6));
    return std::nullopt;
}

const json::string* text(const json::value* v) { return v != nullptr && v->is_string() ? &v->get_string() : nullptr; }

// Text for an SMTP reply line: printable US-ASCII only (RFC 5321 4.2: the text is ASCII), other octets as '?',
// runs of whitespace as one space, cut to kMaxRspamdReplyText.
std::string reply_text(std::string_view in) {
    std::string out;
    for (unsigned char c : in) {
        if (out.size() >= kMaxRspamdReplyText) break;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            if (!out.empty() && out.back() != ' ') out += ' ';
        } else {
            out += (c > 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
        }
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
}

// A field value as it will be written after "Name: ". Folding (CRLF or LF followed by SP/HTAB) is kept as rspamd
// folded it; any other CR, LF, NUL or control character becomes a space, so a value can never end the field early
// or start another one (header injection). UTF-8 stays (RFC 6532). nullopt when too long.
std::optional<std::string> field_value(std::string_view in) {
    if (in.size() > kMaxRspamdHeaderValue) return std::nullopt;
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        const unsigned char c = in[i];
        if (c == '\r' && i + 2 < in.size() && in[i + 1] == '\n' && (in[i + 2] == ' ' || in[i + 2] == '\t')) {
            out += "\r\n";
            ++i;
        } else if (c == '\n' && i + 1 < in.size() && (in[i + 1] == ' ' || in[i + 1] == '\t')) {
            out += '\n';
        } else if (c == '\t' || c >= 0x20) {
            out += (c == 0x7f) ? ' ' : static_cast<char>(c);
        } else {
            out += ' ';
        }
    }
    return out;
}

// Two decimals, as rspamd logs them; an absurd score in exponent form so the text stays short.
std::string format_score(double s) { return std::fabs(s) < 1e9 ? fmt::format("{:.2f}", s) : fmt::format("{:.3g}", s); }

struct MilterEdits {
    std::vector<HeaderEdit> edits;
    std::size_t dropped = 0;
};

void add_edit(MilterEdits& m, HeaderEdit e) {
    if (m.edits.size() >= kMaxRspamdHeaderEdits) {
        ++m.dropped;
        return;
    }
    m.edits.push_back(std::move(e));
}

// One add_headers entry: "value", {"value": "...", "order": N} (rspamd < 3.3), or a list of either (>= 3.3).
// rspamd's milter proxy: no order → append (SMFIR_ADDHEADER); order >= 0 → insert at it (SMFIR_INSHEADER);
// order < 0 → counted from the end, -1 being after the last field; before the first when it reaches past it.
void add_header_entry(MilterEdits& m, std::string_view name, const json::value& v, std::size_t header_fields) {
    std::optional<long> order;
    const json::string* value = nullptr;
    if (v.is_string()) {
        value = &v.get_string();
    } else if (v.is_object()) {
        value = text(member(v.get_object(), "value"));
        const json::value* o = member(v.get_object(), "order");
        if (o == nullptr) o = member(v.get_object(), "index");
        order = integer(o);
    }
    if (value == nullptr) return;
    auto cleaned = field_value(*value);
    if (!cleaned) {
        ++m.dropped;
        return;
    }
    HeaderEdit e;
    e.name = std::string(name);
    e.value = std::move(*cleaned);
    if (!order) {
        e.kind = HeaderEdit::Kind::append;
    } else if (*order >= 0) {
        e.kind = HeaderEdit::Kind::insert;
        e.index = *order;
    } else {
        const long count = static_cast<long>(std::min<std::size_t>(header_fields, 1'000'000));
        e.kind = HeaderEdit::Kind::insert;
        e.index = -*order <= count ? count + *order + 1 : 0;
    }
    add_edit(m, std::move(e));
}

// The "milter" block: remove_headers {"Name": N} first, then add_headers, as rspamd's milter proxy applies them.
MilterEdits milter_edits(const json::value* block, std::size_t header_fields) {
    MilterEdits m;
    if (block == nullptr || !block->is_object()) return m;
    const json::object& o = block->get_object();
    if (const json::value* rm = member(o, "remove_headers"); rm != nullptr && rm->is_object()) {
        for (const auto& kv : rm->get_object()) {
            const auto n = integer(&kv.value());
            if (!n || !kv.value().is_number() || !util::is_field_name(kv.key())) continue;
            add_edit(m, HeaderEdit{HeaderEdit::Kind::remove, *n, std::string(kv.key()), ""});
        }
    }
    if (const json::value* add = member(o, "add_headers"); add != nullptr && add->is_object()) {
        for (const auto& kv : add->get_object()) {
            if (!util::is_field_name(kv.key())) continue;
            if (kv.value().is_array()) {
                for (const auto& item : kv.value().get_array()) add_header_entry(m, kv.key(), item, header_fields);
            } else {
                add_header_entry(m, kv.key(), kv.value(), header_fields);
            }
        }
    }
    return m;
}

// "name(score)" of the highest-scoring symbols, for the log.
std::string top_symbols(const json::value* symbols) {
    if (symbols == nullptr || !symbols->is_object()) return "";
    std::vector<std::pair<double, std::string_view>> all;
    for (const auto& kv : symbols->get_object()) {
        double score = 0;
        if (kv.value().is_object()) score = number(member(kv.value().get_object(), "score")).value_or(0);
        all.emplace_back(score, kv.key());
    }
    const std::size_t n = std::min(all.size(), kRspamdSummarySymbols);
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(),
                      [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
    std::string out;
    for (std::size_t i = 0; i < n; ++i) {
        if (i) out += ',';
        // Symbol names come from rspamd's configuration; cut and made printable all the same (it is a log line).
        out += reply_text(all[i].second.substr(0, 64));
        out += "(" + format_score(all[i].first) + ")";
    }
    if (all.size() > n) out += fmt::format(",+{}", all.size() - n);
    return out;
}

// The X-Spam-* fields of "add header" and "rewrite subject": any the message already carries are removed first
// (a sender's own "X-Spam-Flag: NO" must not sit beside ours), then ours go on top, in this order.
void add_spam_fields(ContentVerdict& v, const config::RspamdSettings& settings, double score, double required) {
    const std::pair<const std::string*, std::string> fields[] = {
        {&settings.spam_flag_header, "YES"},
        {&settings.score_header, format_score(score)},
        {&settings.status_header, fmt::format("Yes, score={} required={}", format_score(score), format_score(required))},
    };
    long at = 0;
    for (const auto& [name, value] : fields) {
        if (name->empty()) continue;   // a name set to "" leaves that field out
        v.header_edits.push_back(HeaderEdit{HeaderEdit::Kind::remove, 0, *name, ""});
        v.header_edits.push_back(HeaderEdit{HeaderEdit::Kind::insert, at++, *name, value});
    }
}

// "dkim-signature": rspamd signed the message (its dkim_signing module, usually for authenticated mail with
// scan_submission): one signature or a list, each a DKIM-Signature field on top, in the order given, as rspamd's
// milter proxy and Haraka add them.
void add_dkim_signatures(ContentVerdict& v, const json::value* field, std::size_t& dropped) {
    if (field == nullptr) return;
    std::vector<const json::string*> signatures;
    if (field->is_string()) {
        signatures.push_back(&field->get_string());
    } else if (field->is_array()) {
        for (const auto& item : field->get_array())
            if (item.is_string()) signatures.push_back(&item.get_string());
    }
    long at = 0;
    for (const json::string* sig : signatures) {
        auto value = field_value(*sig);
        if (!value || value->empty() || at >= static_cast<long>(kMaxRspamdDkimSignatures)) {
            ++dropped;
            continue;
        }
        v.header_edits.push_back(HeaderEdit{HeaderEdit::Kind::insert, at++, "DKIM-Signature", std::move(*value)});
    }
}

}  // namespace

RspamdReply parse_rspamd_reply(std::string_view body, const config::RspamdSettings& settings,
                               std::size_t header_fields) {
    RspamdReply r;
    if (body.size() > kMaxRspamdReply) {
        r.error = fmt::format("reply larger than {} octets", kMaxRspamdReply);
        return r;
    }
    json::parse_options options;
    options.max_depth = kMaxRspamdReplyDepth;
    boost::system::error_code ec;
    const json::value doc = json::parse(body, ec, {}, options);
    if (ec) {
        r.error = "reply is not JSON: " + ec.message();
        return r;
    }
    if (!doc.is_object()) {
        r.error = "reply is not a JSON object";
        return r;
    }
    const json::object& o = doc.get_object();
    if (const json::string* err = text(member(o, "error"))) {
        r.error = "rspamd: " + reply_text(std::string_view(*err).substr(0, 200));
        return r;
    }
    const json::string* action_text = text(member(o, "action"));
    if (action_text == nullptr) {
        r.error = "reply has no action";
        return r;
    }
    const std::string_view action = *action_text;
    const double score = number(member(o, "score")).value_or(0);
    const double required = number(member(o, "required_score")).value_or(0);
    std::optional<std::string> smtp_message;
    if (const json::value* messages = member(o, "messages"); messages != nullptr && messages->is_object()) {
        if (const json::string* m = text(member(messages->get_object(), "smtp_message"))) {
            auto t = reply_text(*m);
            if (!t.empty()) smtp_message = std::move(t);
        }
    }

    ContentVerdict& v = r.verdict;
    Decision& d = v.decision;
    bool deliver = false;
    if (action == "reject") {
        d.action = Decision::Action::reject;
        d.reply = smtp::Reply(550, "5.7.1", smtp_message.value_or("Spam message rejected"));
    } else if (action == "soft reject") {
        d.action = Decision::Action::tempfail;
        d.reply = smtp::Reply(451, "4.7.1", smtp_message.value_or("Try again later"));
    } else if (action == "greylist") {
        d.action = Decision::Action::tempfail;
        d.reply = smtp::Reply(451, "4.7.1", "Greylisted, try again later");
    } else if (action == "add header" || action == "rewrite subject") {
        d.action = Decision::Action::proceed;
        // "add header": the Junk folder. "rewrite subject" marks the subject so the reader sees it in the inbox.
        v.junk = action == "add header";
        deliver = true;
    } else if (action == "no action") {
        d.action = Decision::Action::proceed;
        deliver = true;
    } else if (action == "discard") {
        d.action = Decision::Action::discard;
    } else if (action == "quarantine") {
        d.action = Decision::Action::proceed;
        v.quarantine = true;
        v.quarantine_reason = smtp_message.value_or("rspamd: quarantine");
        deliver = true;
    } else {
        r.error = "unknown action \"" + reply_text(action.substr(0, 64)) + "\"";
        return r;
    }
    d.reason = fmt::format("rspamd: {}", reply_text(action));

    std::size_t dropped = 0;
    if (deliver) {
        // The milter block first: its positions count the fields of the message rspamd saw.
        MilterEdits m = milter_edits(member(o, "milter"), header_fields);
        dropped = m.dropped;
        v.header_edits = std::move(m.edits);
        if (action != "no action") add_spam_fields(v, settings, score, required);
        if (action == "rewrite subject") {
            if (const json::string* subject = text(member(o, "subject"))) {
                auto value = field_value(*subject);
                // An empty value would delete the field (HeaderEdit::change); rspamd always writes something.
                if (value && !value->empty())
                    v.header_edits.push_back(HeaderEdit{HeaderEdit::Kind::change, 1, "Subject", std::move(*value)});
            }
        }
        add_dkim_signatures(v, member(o, "dkim-signature"), dropped);
    }

    v.summary = fmt::format("action={} score={}/{}", reply_text(action), format_score(score), format_score(required));
    if (auto symbols = top_symbols(member(o, "symbols")); !symbols.empty()) v.summary += " symbols=" + symbols;
    if (dropped) v.summary += fmt::format(" dropped_header_edits={}", dropped);
    return r;
}

}  // namespace ferry::filter
