#include "mime/dsn_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <string_view>

#include "smtp/dsn.hpp"
#include "util/time_format.hpp"

namespace ferry::mime {
namespace {

constexpr std::size_t kFoldWidth = 78;         // RFC 5322 2.1.1: SHOULD be at most 78 octets
constexpr std::size_t kMaxWord = 900;          // a longer run without spaces is cut: lines stay under 998
constexpr std::size_t kMaxDiagnostic = 2048;   // remote text beyond this is dropped
constexpr std::size_t kMaxBoundaryToken = 50;  // RFC 2046 5.1.1: a boundary is at most 70 characters

// Free text for a field or the explanation: control characters (CR and LF among them) become a space, one
// for a run, so text from a remote server cannot end a line or start a field; octets over 127 become '?' unless
// UTF-8 is allowed.
std::string clean(std::string_view text, bool keep_utf8, std::size_t limit = std::string_view::npos) {
    std::string out;
    for (const char c : text.substr(0, limit)) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7F) {
            if (out.empty() || out.back() != ' ') out.push_back(' ');
        } else if (u >= 0x80 && !keep_utf8) {
            out.push_back('?');
        } else {
            out.push_back(c);
        }
    }
    if (text.size() > limit) out += "...";
    const auto first = out.find_first_not_of(' ');
    if (first == std::string::npos) return "";
    return out.substr(first, out.find_last_not_of(' ') + 1 - first);
}

// Letters and digits only: safe in a boundary and a Message-ID whatever the caller passed.
std::string alnum(std::string_view text, std::size_t limit) {
    std::string out;
    for (const char c : text)
        if (((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) && out.size() < limit)
            out.push_back(c);
    return out.empty() ? "x" : out;
}

// A host name as it goes after "dns;" and '@': letters, digits, '.', '-', the '[', ':' and ']' of an address
// literal, and UTF-8 in a utf8 report.
std::string host_name(std::string_view host, bool utf8) {
    std::string out;
    for (const char c : host.substr(0, 255)) {
        const auto u = static_cast<unsigned char>(c);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            std::string_view(".-[:]").find(c) != std::string_view::npos || (u >= 0x80 && utf8))
            out.push_back(c);
    }
    return out.empty() ? "localhost" : out;
}

// One logical line (no CR or LF) broken at spaces into lines of about kFoldWidth octets: the first starts with
// `first`, the others with `indent` (" " folds a header field, RFC 5322 2.2.3, and unfolding gives the text
// back). A word over kMaxWord octets is cut, so no line reaches 998 octets (RFC 5322 2.1.1).
std::string fold(std::string_view text, std::string_view indent, std::string_view first = "") {
    std::string out(first);
    std::size_t line_start = 0;
    bool words_on_line = false;
    while (!text.empty()) {
        const std::string_view word = text.substr(0, std::min(text.find(' '), kMaxWord));
        text.remove_prefix(word.size());
        if (!text.empty() && text.front() == ' ') text.remove_prefix(1);
        if (words_on_line && out.size() - line_start + 1 + word.size() > kFoldWidth) {
            out += "\r\n";
            line_start = out.size();
            out += indent;
        } else if (words_on_line) {
            out.push_back(' ');
        }
        out += word;
        words_on_line = true;
    }
    return out + "\r\n";
}

// "Name: value", never folded before the value's first word.
void field(std::string& out, std::string_view name, std::string_view value) {
    out += fold(value, " ", std::string(name) + ": ");
}

bool has_non_ascii(std::string_view s) {
    return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
}

// RFC 3464 2.3.3: anything else from the caller is a bug, reported as the failure it most likely is.
std::string action_of(const DsnRecipient& r) {
    for (const std::string_view a : {"failed", "delayed", "delivered", "relayed", "expanded"})
        if (r.action == a) return r.action;
    return "failed";
}

// RFC 3463 class.subject.detail; a malformed one is replaced by the generic code of the action's class.
std::string status_of(const DsnRecipient& r, std::string_view action) {
    const std::string& s = r.status;
    const auto digits = [&](std::size_t from, std::size_t to) {
        return to > from && to - from <= 3 &&
               std::all_of(s.begin() + from, s.begin() + to, [](char c) { return c >= '0' && c <= '9'; });
    };
    const auto dot1 = s.find('.');
    const auto dot2 = dot1 == std::string::npos ? std::string::npos : s.find('.', dot1 + 1);
    if (s.size() >= 5 && (s[0] == '2' || s[0] == '4' || s[0] == '5') && dot1 == 1 && dot2 != std::string::npos &&
        digits(2, dot2) && digits(dot2 + 1, s.size()))
        return s;
    return action == "failed" ? "5.0.0" : action == "delayed" ? "4.0.0" : "2.0.0";
}

// RFC 3464 2.3.1 with the ORCPT decoded; RFC 6533 3: a utf-8 one keeps its xtext form (ASCII) outside
// message/global-delivery-status. "" when it cannot be shown.
std::string original_recipient(std::string_view orcpt, bool utf8) {
    const auto decoded = smtp::decode_orcpt(orcpt);
    if (!decoded) return "";
    if (decoded->starts_with("utf-8;") && !utf8)
        return has_non_ascii(orcpt) ? "" : "utf-8;" + std::string(orcpt.substr(orcpt.find(';') + 1));
    return clean(*decoded, utf8);
}

std::string final_recipient(std::string_view address, bool utf8) {
    // RFC 6533 3: a non-ASCII address is of type utf-8 (only in a utf8 report; elsewhere it shows as '?').
    return (utf8 && has_non_ascii(address) ? "utf-8; " : "rfc822; ") + clean(address, utf8);
}

std::string main_action(const DsnReport& report) {
    std::string worst = "delivered";
    for (const DsnRecipient& r : report.recipients) {
        const std::string a = action_of(r);
        if (a == "failed") return a;
        if (a == "delayed") worst = a;
    }
    return worst;
}

std::string_view subject_for(std::string_view action) {
    if (action == "failed") return "Undelivered Mail Returned to Sender";
    if (action == "delayed") return "Delayed Mail (still being retried)";
    return "Successful Mail Delivery Report";
}

std::string intro_for(std::string_view action, bool headers_only) {
    if (action == "failed")
        return fmt::format("Your message could not be delivered to one or more of its recipients. The reasons are "
                           "listed below, and {} returned with this report.",
                           headers_only ? "the header of your message is" : "your message is");
    if (action == "delayed")
        return "Your message has not been delivered yet to one or more of its recipients. The mail system "
               "keeps trying, so there is no need to send it again; you will hear from it if it finally gives up.";
    return "Your message was delivered as listed below. You receive this report because delivery "
           "notifications were asked for.";
}

std::string_view outcome_for(std::string_view action) {
    if (action == "failed") return "could not be delivered";
    if (action == "delayed") return "not delivered yet, still trying";
    if (action == "relayed") return "passed on to a system that does not send delivery reports";
    if (action == "expanded") return "delivered to the members of a list or alias";
    return "delivered";
}

// Part 1: what happened, in plain words, for a person.
std::string explanation(const DsnReport& report, std::string_view action, const std::string& host) {
    std::string out = fold("This is the mail system at host " + host + ".", "") + "\r\n" +
                      fold(intro_for(action, report.return_headers_only), "") + "\r\n";
    for (const DsnRecipient& r : report.recipients) {
        const std::string a = action_of(r);
        out += fold(fmt::format("<{}>: {}.", clean(r.final_recipient, report.utf8), outcome_for(a)), "    ");
        const std::string diagnostic = clean(r.diagnostic, false, kMaxDiagnostic);
        if (!diagnostic.empty()) {
            const std::string who = r.remote_mta.empty() ? "Reason" : host_name(r.remote_mta, report.utf8) + " said";
            out += fold(who + ": " + diagnostic, "    ", "    ");
        }
    }
    return out;
}

// Part 2: the machine-readable report (RFC 3464 2.2 per-message fields, 2.3 one block per recipient).
std::string delivery_status(const DsnReport& report, const std::string& host) {
    std::string out;
    field(out, "Reporting-MTA", "dns; " + host);
    if (!report.envid.empty() && smtp::valid_envid(report.envid))
        field(out, "Original-Envelope-Id", clean(*smtp::xtext_decode(report.envid), false));
    field(out, "X-Ferry-Queue-ID", clean(report.queue_id, false));
    if (report.arrival != 0) field(out, "Arrival-Date", util::rfc5322_date(report.arrival));
    for (const DsnRecipient& r : report.recipients) {
        out += "\r\n";
        if (const std::string orcpt = original_recipient(r.orcpt, report.utf8); !orcpt.empty())
            field(out, "Original-Recipient", orcpt);
        field(out, "Final-Recipient", final_recipient(r.final_recipient, report.utf8));
        const std::string action = action_of(r);
        field(out, "Action", action);
        field(out, "Status", status_of(r, action));
        if (!r.remote_mta.empty()) field(out, "Remote-MTA", "dns; " + host_name(r.remote_mta, report.utf8));
        if (const std::string d = clean(r.diagnostic, false, kMaxDiagnostic); !d.empty())
            field(out, "Diagnostic-Code", "smtp; " + d);
        if (r.last_attempt != 0) field(out, "Last-Attempt-Date", util::rfc5322_date(r.last_attempt));
    }
    return out;
}

}  // namespace

DsnMessage build_dsn(const DsnReport& report) {
    const std::string host = host_name(report.reporting_mta, report.utf8);
    const std::string action = main_action(report);
    const std::string boundary = "=_ferry_dsn_" + alnum(report.boundary_token, kMaxBoundaryToken);
    const bool eight_bit = report.utf8 || report.body_8bit;
    const std::string part_8bit = report.utf8 ? "Content-Transfer-Encoding: 8bit\r\n" : "";
    // RFC 6522 3: report-type is the subtype of the second part, RFC 6533's global one for a utf8 report.
    const std::string status_type = report.utf8 ? "global-delivery-status" : "delivery-status";

    std::string head;
    field(head, "From", "Mail Delivery System <MAILER-DAEMON@" + host + ">");
    const std::string to = clean(report.original_sender, report.utf8);
    field(head, "To", to.empty() ? "undisclosed-recipients:;" : "<" + to + ">");
    field(head, "Subject", subject_for(action));
    field(head, "Date", util::rfc5322_date(report.now));
    field(head, "Message-ID",
          fmt::format("<{}.dsn.{}@{}>", alnum(report.queue_id, 64), alnum(report.boundary_token, 64), host));
    head += "Auto-Submitted: auto-replied\r\n";   // RFC 3834 5: no automatic answer to this one
    head += "MIME-Version: 1.0\r\n";
    head += "Content-Type: multipart/report; report-type=" + status_type + ";\r\n\tboundary=\"" + boundary + "\"\r\n";
    if (eight_bit) head += "Content-Transfer-Encoding: 8bit\r\n";
    head += "\r\nThis is a MIME-encapsulated message.\r\n\r\n";

    head += "--" + boundary + "\r\n";
    head += "Content-Description: Notification\r\n";
    head += std::string("Content-Type: text/plain; charset=") + (report.utf8 ? "utf-8" : "us-ascii") + "\r\n";
    head += part_8bit + "\r\n" + explanation(report, action, host) + "\r\n";

    head += "--" + boundary + "\r\n";
    head += "Content-Description: Delivery report\r\n";
    head += "Content-Type: message/" + status_type + "\r\n";
    head += part_8bit + "\r\n" + delivery_status(report, host) + "\r\n";

    head += "--" + boundary + "\r\n";
    head += report.return_headers_only ? "Content-Description: Message headers\r\n" : "Content-Description: Message\r\n";
    const char* type = report.utf8 ? (report.return_headers_only ? "message/global-headers" : "message/global")
                                   : (report.return_headers_only ? "text/rfc822-headers" : "message/rfc822");
    head += std::string("Content-Type: ") + type + "\r\n";
    if (eight_bit) head += "Content-Transfer-Encoding: 8bit\r\n";
    head += "\r\n";

    return DsnMessage{std::move(head), "\r\n--" + boundary + "--\r\n"};
}

}  // namespace ferry::mime
