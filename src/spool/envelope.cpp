#include "spool/envelope.hpp"

#include <algorithm>
#include <charconv>
#include <utility>

namespace ferry::spool {
namespace {

constexpr std::string_view kMagic = "Ferry-Spool: 1\n";

// Only the text dsn::format_notify writes is read back: we wrote it, so anything else is damage.
std::optional<unsigned> notify_bits(std::string_view text) {
    for (unsigned n = 1; n < 16; ++n)
        if ((n == 1 || (n & 1) == 0) && dsn::format_notify(n) == text) return n;
    return std::nullopt;
}

// An ENVID or ORCPT value: xtext, or an RFC 6533 ORCPT that may carry UTF-8; never a space or control.
bool is_token(std::string_view value) {
    return !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u != 0x7F;
    });
}

// One "Key: value" line of the envelope into `e`; false when it is unknown, repeated or malformed.
bool parse_line(std::string_view key, std::string_view value, Envelope& e) {
    if (key == "Queue-Id") e.queue_id = std::string(value);
    else if (key == "Arrival") std::from_chars(value.data(), value.data() + value.size(), e.arrival);
    else if (key == "Client") e.client = std::string(value);
    else if (key == "Sender") e.sender = std::string(value);
    else if (key == "Recipient") {
        e.recipients.emplace_back(value);
        e.recipient_dsn.emplace_back();
    } else if (key == "Smtputf8") {
        if (e.smtputf8 || value != "yes") return false;
        e.smtputf8 = true;
    } else if (key == "Body") {
        if (e.body_8bit || value != "8BITMIME") return false;
        e.body_8bit = true;
    } else if (key == "Ret") {
        if (e.ret != dsn::Ret::unspecified) return false;
        if (value == dsn::to_string(dsn::Ret::full)) e.ret = dsn::Ret::full;
        else if (value == dsn::to_string(dsn::Ret::hdrs)) e.ret = dsn::Ret::hdrs;
        else return false;
    } else if (key == "Envid") {
        if (!e.envid.empty() || !is_token(value)) return false;
        e.envid = std::string(value);
    } else if (key == "Addendum") {
        if (e.addendum || value != "yes") return false;
        e.addendum = true;
    } else if (key == "Notify") {   // of the recipient just before
        const auto bits = notify_bits(value);
        if (e.recipient_dsn.empty() || e.recipient_dsn.back().notify != 0 || !bits) return false;
        e.recipient_dsn.back().notify = *bits;
    } else if (key == "Orcpt") {
        if (e.recipient_dsn.empty() || !e.recipient_dsn.back().orcpt.empty() || !is_token(value)) return false;
        e.recipient_dsn.back().orcpt = std::string(value);
    } else {
        return false;
    }
    return true;
}

}  // namespace

std::string serialize_envelope(const Envelope& e) {
    std::string out(kMagic);
    out += "Queue-Id: " + e.queue_id + "\n";
    out += "Arrival: " + std::to_string(e.arrival) + "\n";
    out += "Client: " + e.client + "\n";
    out += "Sender: " + e.sender + "\n";
    if (e.smtputf8) out += "Smtputf8: yes\n";
    if (e.body_8bit) out += "Body: 8BITMIME\n";
    if (e.ret != dsn::Ret::unspecified) out += "Ret: " + std::string(dsn::to_string(e.ret)) + "\n";
    if (!e.envid.empty()) out += "Envid: " + e.envid + "\n";
    if (e.addendum) out += "Addendum: yes\n";
    for (std::size_t i = 0; i < e.recipients.size(); ++i) {
        out += "Recipient: " + e.recipients[i] + "\n";
        if (i >= e.recipient_dsn.size()) continue;
        const RecipientDsn& dsn = e.recipient_dsn[i];
        if (const std::string notify = dsn::format_notify(dsn.notify); !notify.empty()) out += "Notify: " + notify + "\n";
        if (!dsn.orcpt.empty()) out += "Orcpt: " + dsn.orcpt + "\n";
    }
    out += "\n";
    return out;
}

std::optional<ParsedEnvelope> parse_envelope(std::string_view head) {
    if (head.substr(0, kMagic.size()) != kMagic) return std::nullopt;
    ParsedEnvelope out;
    std::size_t pos = kMagic.size();
    while (true) {
        const auto nl = head.find('\n', pos);
        if (nl == std::string_view::npos) return std::nullopt;
        const std::string_view line = head.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.empty()) break;
        const auto colon = line.find(": ");
        if (colon == std::string_view::npos) {
            // "Sender: " with the null sender serializes as "Sender:" plus a space, so colon is always found.
            return std::nullopt;
        }
        if (!parse_line(line.substr(0, colon), line.substr(colon + 2), out.envelope)) return std::nullopt;
    }
    if (out.envelope.queue_id.empty() || out.envelope.recipients.empty()) return std::nullopt;
    out.content_offset = pos;
    return out;
}

}  // namespace ferry::spool
