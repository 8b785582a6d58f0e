// The DSN extension's parameters (smtp/dsn: xtext, NOTIFY, RET, ENVID, ORCPT) and the RFC 3464 report built
// from what a remote server or the spool hands in (mime::build_dsn). Input: a flags octet, then NUL-separated
// fields NOTIFY, ORCPT, ENVID, recipient address, remote host and the rest as the diagnostic text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "mime/dsn_report.hpp"
#include "smtp/dsn.hpp"

using namespace ferry;

namespace {

std::string_view next_field(std::string_view& input) {
    const auto nul = input.find('\0');
    const std::string_view field = input.substr(0, nul);
    input.remove_prefix(nul == std::string_view::npos ? input.size() : nul + 1);
    return field;
}

void check_xtext(std::string_view text) {
    const std::string encoded = smtp::xtext_encode(text);
    for (const char c : encoded) FUZZ_CHECK(c >= 33 && c <= 126 && c != '=');
    FUZZ_CHECK(smtp::xtext_decode(encoded) == std::string(text));
    if (const auto decoded = smtp::xtext_decode(text)) {
        FUZZ_CHECK(decoded->size() <= text.size());
        FUZZ_CHECK(smtp::xtext_encode(*decoded).size() <= text.size());   // canonical is never longer
    }
}

void check_parameters(std::string_view notify, std::string_view orcpt, std::string_view envid) {
    if (const auto n = smtp::parse_notify(notify)) {
        FUZZ_CHECK(*n != 0 && *n < 16);
        FUZZ_CHECK(!(*n & smtp::kNotifyNever) || *n == smtp::kNotifyNever);
        FUZZ_CHECK(smtp::parse_notify(smtp::format_notify(*n)) == n);
    }
    if (const auto r = smtp::parse_ret(notify)) FUZZ_CHECK(smtp::parse_ret(smtp::to_string(*r)) == r);
    if (const auto d = smtp::decode_orcpt(orcpt)) {
        FUZZ_CHECK(orcpt.size() <= smtp::kMaxOrcptLength);
        const auto semi = d->find(';');
        FUZZ_CHECK(semi != std::string::npos && semi > 0 && semi + 1 < d->size());
        if (d->substr(0, semi) != "utf-8")
            for (const char c : d->substr(semi + 1)) FUZZ_CHECK((c >= 0x20 && c <= 0x7E) || c == '\t');
    }
    if (smtp::valid_envid(envid)) FUZZ_CHECK(smtp::xtext_decode(envid)->size() <= smtp::kMaxEnvidLength);
}

std::vector<std::string_view> lines_of(std::string_view text) {
    std::vector<std::string_view> out;
    while (!text.empty()) {
        const auto end = text.find("\r\n");
        FUZZ_CHECK(end != std::string_view::npos);   // every line ends in CRLF
        out.push_back(text.substr(0, end));
        text.remove_prefix(end + 2);
    }
    return out;
}

bool starts_with_any(std::string_view line, std::initializer_list<std::string_view> names) {
    for (const std::string_view n : names)
        if (line.starts_with(n)) return true;
    return false;
}

// Only our own fields start a line in the message header and in the delivery-status part; whatever came from
// outside stays inside a field value (or on a folded continuation line).
void check_report(const mime::DsnMessage& m, bool utf8) {
    const auto lines = lines_of(m.head);
    std::size_t boundaries = 0;
    bool in_header = true, in_status = false;
    for (const std::string_view line : lines) {
        FUZZ_CHECK(line.size() <= 998);
        FUZZ_CHECK(line.find('\r') == std::string_view::npos && line.find('\n') == std::string_view::npos);
        FUZZ_CHECK(line.find('\0') == std::string_view::npos);
        if (!utf8)
            for (const char c : line) FUZZ_CHECK(static_cast<unsigned char>(c) < 0x80);
        if (line.starts_with("--=_ferry_dsn_")) {
            ++boundaries;
            in_status = false;
            continue;
        }
        if (line.empty()) {
            in_header = false;
            in_status = boundaries == 2;
            continue;
        }
        if (line[0] == ' ' || line[0] == '\t') continue;
        if (in_header)
            FUZZ_CHECK(starts_with_any(line, {"From: ", "To: ", "Subject: ", "Date: ", "Message-ID: ",
                                              "Auto-Submitted: ", "MIME-Version: ", "Content-Type: ",
                                              "Content-Transfer-Encoding: "}));
        if (in_status)
            FUZZ_CHECK(starts_with_any(line, {"Reporting-MTA: ", "Original-Envelope-Id: ", "X-Ferry-Queue-ID: ",
                                              "Arrival-Date: ", "Original-Recipient: ", "Final-Recipient: ",
                                              "Action: ", "Status: ", "Remote-MTA: ", "Diagnostic-Code: ",
                                              "Last-Attempt-Date: "}));
    }
    FUZZ_CHECK(boundaries == 3);
    FUZZ_CHECK(m.tail.starts_with("\r\n--=_ferry_dsn_") && m.tail.ends_with("--\r\n"));
    FUZZ_CHECK(lines_of(m.tail).size() == 2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const unsigned flags = data[0];
    std::string_view input = fuzz::as_text(data + 1, size - 1);
    const std::string_view notify = next_field(input);
    const std::string_view orcpt = next_field(input);
    const std::string_view envid = next_field(input);
    const std::string_view address = next_field(input);
    const std::string_view remote = next_field(input);
    const std::string_view diagnostic = input;

    for (const std::string_view f : {notify, orcpt, envid, diagnostic}) check_xtext(f);
    check_parameters(notify, orcpt, envid);

    static constexpr const char* kActions[] = {"failed", "delayed", "delivered", "relayed", "expanded", "bogus"};
    mime::DsnReport report;
    report.reporting_mta = "mx.example.test";
    report.queue_id = "1J0TT776IJT0000";
    report.envid = std::string(envid);
    report.arrival = 1795430789;
    report.now = 1795430789 + 3600;
    report.original_sender = std::string(address);
    report.return_headers_only = flags & 1;
    report.utf8 = flags & 2;
    report.body_8bit = flags & 4;
    report.boundary_token = "1J0TT776IJT0001" + std::string(notify);
    mime::DsnRecipient r;
    r.final_recipient = std::string(address);
    r.orcpt = std::string(orcpt);
    r.action = kActions[(flags >> 3) % 6];
    r.status = std::string(notify.substr(0, 8));
    r.remote_mta = std::string(remote);
    r.diagnostic = std::string(diagnostic);
    r.last_attempt = flags & 0x40 ? report.now : 0;
    report.recipients = {r, r};
    check_report(mime::build_dsn(report), report.utf8);
    return 0;
}
