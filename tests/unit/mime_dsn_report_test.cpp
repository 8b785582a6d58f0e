#include "mime/dsn_report.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mime/header.hpp"

using namespace ferry::mime;

namespace {

constexpr std::time_t kNow = 1795430789;   // Mon, 23 Nov 2026 10:46:29 +0000

DsnReport failed_report() {
    DsnReport r;
    r.reporting_mta = "mx.example.test";
    r.queue_id = "1J0TT776IJT0000";
    r.envid = "abc+2Bdef";
    r.arrival = kNow - 3600;
    r.now = kNow;
    r.original_sender = "sender@client.test";
    r.boundary_token = "1J0TT776IJT0001x42";
    DsnRecipient bob;
    bob.final_recipient = "bob@remote.test";
    bob.orcpt = "rfc822;bob+2Bold@remote.test";
    bob.action = "failed";
    bob.status = "5.1.1";
    bob.remote_mta = "mx.remote.test";
    bob.diagnostic = "550 5.1.1 <bob@remote.test>: Recipient address rejected: User unknown";
    bob.last_attempt = kNow - 60;
    DsnRecipient carol;
    carol.final_recipient = "carol@nowhere.test";
    carol.action = "failed";
    carol.status = "5.1.2";
    carol.diagnostic = "Host or domain name not found";
    r.recipients = {bob, carol};
    return r;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto end = text.find("\r\n", pos);
        if (end == std::string::npos) {
            out.push_back(text.substr(pos));
            break;
        }
        out.push_back(text.substr(pos, end - pos));
        pos = end + 2;
    }
    return out;
}

// Every line ends in CRLF, has no other CR or LF and is at most 998 octets (RFC 5322 2.1.1, 2.3).
void expect_well_formed(const std::string& text) {
    ASSERT_TRUE(text.size() >= 2 && text.substr(text.size() - 2) == "\r\n");
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\r') {
            ASSERT_TRUE(i + 1 < text.size() && text[i + 1] == '\n') << i;
        }
        if (text[i] == '\n') {
            ASSERT_TRUE(i > 0 && text[i - 1] == '\r') << i;
        }
    }
    for (const std::string& line : lines_of(text)) EXPECT_LE(line.size(), 998u) << line.substr(0, 80);
}

// The parts between the boundaries of a multipart body (RFC 2046 5.1.1), without the preamble and epilogue.
std::vector<std::string> parts_of(const std::string& message, const std::string& boundary) {
    std::vector<std::string> parts;
    const std::string delimiter = "\r\n--" + boundary;
    std::size_t pos = message.find(delimiter);
    while (pos != std::string::npos) {
        pos += delimiter.size();
        if (message.compare(pos, 2, "--") == 0) return parts;
        const auto start = message.find("\r\n", pos) + 2;
        const auto next = message.find(delimiter, start);
        if (next == std::string::npos) break;
        parts.push_back(message.substr(start, next - start));
        pos = next;
    }
    ADD_FAILURE() << "no closing boundary";
    return parts;
}

std::string boundary_of(const std::string& head) {
    const auto type = header_field(header_section(head), "Content-Type");
    EXPECT_TRUE(type);
    const auto b = type->find("boundary=\"");
    EXPECT_NE(b, std::string::npos);
    return type->substr(b + 10, type->find('"', b + 10) - b - 10);
}

const std::string kOriginal = "From: sender@client.test\r\nSubject: hello\r\n\r\nbody\r\n";

TEST(DsnReport, HeaderFields) {
    const DsnMessage m = build_dsn(failed_report());
    const std::string_view h = header_section(m.head);
    EXPECT_EQ(header_field(h, "From"), "Mail Delivery System <MAILER-DAEMON@mx.example.test>");
    EXPECT_EQ(header_field(h, "To"), "<sender@client.test>");
    EXPECT_EQ(header_field(h, "Subject"), "Undelivered Mail Returned to Sender");
    EXPECT_EQ(header_field(h, "Date"), "Mon, 23 Nov 2026 10:46:29 +0000");
    EXPECT_EQ(header_field(h, "Message-ID"), "<1J0TT776IJT0000.dsn.1J0TT776IJT0001x42@mx.example.test>");
    EXPECT_EQ(header_field(h, "Auto-Submitted"), "auto-replied");
    EXPECT_EQ(header_field(h, "MIME-Version"), "1.0");
    EXPECT_EQ(header_field(h, "Content-Type"),
              "multipart/report; report-type=delivery-status;\tboundary=\"=_ferry_dsn_1J0TT776IJT0001x42\"");
    EXPECT_FALSE(header_field(h, "Content-Transfer-Encoding"));
}

TEST(DsnReport, ThreePartsAroundTheOriginal) {
    const DsnMessage m = build_dsn(failed_report());
    const std::string message = m.head + kOriginal + m.tail;
    expect_well_formed(message);
    const std::string boundary = boundary_of(m.head);
    EXPECT_EQ(m.tail, "\r\n--" + boundary + "--\r\n");
    const auto parts = parts_of(message, boundary);
    ASSERT_EQ(parts.size(), 3u);
    EXPECT_EQ(header_field(header_section(parts[0]), "Content-Type"), "text/plain; charset=us-ascii");
    EXPECT_EQ(header_field(header_section(parts[1]), "Content-Type"), "message/delivery-status");
    EXPECT_EQ(parts[2], "Content-Description: Message\r\nContent-Type: message/rfc822\r\n\r\n" + kOriginal);
}

TEST(DsnReport, DeliveryStatusFields) {
    const DsnMessage m = build_dsn(failed_report());
    const auto parts = parts_of(m.head + kOriginal + m.tail, boundary_of(m.head));
    ASSERT_EQ(parts.size(), 3u);
    const std::string& status = parts[1];
    EXPECT_EQ(status.substr(status.find("\r\n\r\n") + 4),
              "Reporting-MTA: dns; mx.example.test\r\n"
              "Original-Envelope-Id: abc+def\r\n"
              "X-Ferry-Queue-ID: 1J0TT776IJT0000\r\n"
              "Arrival-Date: Mon, 23 Nov 2026 09:46:29 +0000\r\n"
              "\r\n"
              "Original-Recipient: rfc822;bob+old@remote.test\r\n"
              "Final-Recipient: rfc822; bob@remote.test\r\n"
              "Action: failed\r\n"
              "Status: 5.1.1\r\n"
              "Remote-MTA: dns; mx.remote.test\r\n"
              "Diagnostic-Code: smtp; 550 5.1.1 <bob@remote.test>: Recipient address\r\n"
              " rejected: User unknown\r\n"
              "Last-Attempt-Date: Mon, 23 Nov 2026 10:45:29 +0000\r\n"
              "\r\n"
              "Final-Recipient: rfc822; carol@nowhere.test\r\n"
              "Action: failed\r\n"
              "Status: 5.1.2\r\n"
              "Diagnostic-Code: smtp; Host or domain name not found\r\n");
}

TEST(DsnReport, ExplanationNamesEachRecipientAndReason) {
    const DsnMessage m = build_dsn(failed_report());
    const auto parts = parts_of(m.head + kOriginal + m.tail, boundary_of(m.head));
    ASSERT_EQ(parts.size(), 3u);
    const std::string& text = parts[0];
    EXPECT_NE(text.find("This is the mail system at host mx.example.test.\r\n"), std::string::npos);
    EXPECT_NE(text.find("<bob@remote.test>: could not be delivered.\r\n"
                        "    mx.remote.test said: 550 5.1.1 <bob@remote.test>: Recipient address\r\n"
                        "    rejected: User unknown\r\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("<carol@nowhere.test>: could not be delivered.\r\n"
                        "    Reason: Host or domain name not found\r\n"),
              std::string::npos)
        << text;
}

TEST(DsnReport, SubjectFollowsTheMostSevereAction) {
    DsnReport r = failed_report();
    r.recipients[0].action = "delayed";
    EXPECT_EQ(header_field(header_section(build_dsn(r).head), "Subject"), "Undelivered Mail Returned to Sender");
    r.recipients[1].action = "delayed";
    EXPECT_EQ(header_field(header_section(build_dsn(r).head), "Subject"), "Delayed Mail (still being retried)");
    r.recipients[0].action = r.recipients[1].action = "delivered";
    r.recipients[0].status = r.recipients[1].status = "2.0.0";
    EXPECT_EQ(header_field(header_section(build_dsn(r).head), "Subject"), "Successful Mail Delivery Report");
    r.recipients[1].action = "relayed";
    EXPECT_EQ(header_field(header_section(build_dsn(r).head), "Subject"), "Successful Mail Delivery Report");
}

TEST(DsnReport, HeadersOnlyAndUtf8MediaTypes) {
    DsnReport r = failed_report();
    r.return_headers_only = true;
    std::string head = build_dsn(r).head;
    EXPECT_NE(head.find("Content-Type: text/rfc822-headers\r\n\r\n"), std::string::npos);

    r.utf8 = true;
    r.original_sender = "s\xC3\xA9nder@client.test";
    r.recipients[0].final_recipient = "b\xC3\xB6" "b@remote.test";
    r.recipients[0].orcpt = "utf-8;b\\x{F6}b@remote.test";
    head = build_dsn(r).head;
    EXPECT_NE(head.find("Content-Type: message/global-headers\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"),
              std::string::npos);
    EXPECT_NE(head.find("Content-Type: message/global-delivery-status\r\n"), std::string::npos);
    EXPECT_NE(head.find("report-type=global-delivery-status;"), std::string::npos);
    EXPECT_NE(head.find("Content-Type: text/plain; charset=utf-8\r\n"), std::string::npos);
    EXPECT_NE(head.find("To: <s\xC3\xA9nder@client.test>\r\n"), std::string::npos);
    EXPECT_NE(head.find("Original-Recipient: utf-8;b\xC3\xB6" "b@remote.test\r\n"), std::string::npos);
    EXPECT_NE(head.find("Final-Recipient: utf-8; b\xC3\xB6" "b@remote.test\r\n"), std::string::npos);

    r.return_headers_only = false;
    EXPECT_NE(build_dsn(r).head.find("Content-Type: message/global\r\n"), std::string::npos);
}

TEST(DsnReport, Utf8OrcptKeepsItsXtextFormInAnAsciiReport) {
    DsnReport r = failed_report();
    r.recipients[0].orcpt = "utf-8;b\\x{F6}b@remote.test";
    EXPECT_NE(build_dsn(r).head.find("Original-Recipient: utf-8;b\\x{F6}b@remote.test\r\n"), std::string::npos);
    r.recipients[0].orcpt = "rfc822;broken+2";   // not decodable: left out
    EXPECT_EQ(build_dsn(r).head.find("Original-Recipient:"), std::string::npos);
}

TEST(DsnReport, EightBitOriginalIsLabelled) {
    DsnReport r = failed_report();
    r.body_8bit = true;
    const std::string head = build_dsn(r).head;
    EXPECT_EQ(header_field(header_section(head), "Content-Transfer-Encoding"), "8bit");
    EXPECT_NE(head.find("Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"), std::string::npos);
    EXPECT_NE(head.find("charset=us-ascii\r\n\r\n"), std::string::npos);   // our own parts stay 7bit
}

TEST(DsnReport, RemoteTextIsSanitizedAndFolded) {
    DsnReport r = failed_report();
    r.recipients[0].diagnostic = "550-5.1.1 first line\r\n550 5.1.1 second\x01line\nInjected: yes \xC3\xA9 " +
                                 std::string(3000, 'x') + " " + std::string(200, 'y');
    r.recipients[0].remote_mta = "mx.remote.test\r\nX-Evil: 1";
    r.original_sender = "sender@client.test\r\nBcc: victim@example.test";
    const DsnMessage m = build_dsn(r);
    expect_well_formed(m.head);
    EXPECT_EQ(m.head.find("\r\nInjected:"), std::string::npos);
    EXPECT_EQ(m.head.find("\r\nX-Evil:"), std::string::npos);
    EXPECT_EQ(m.head.find("\r\nBcc:"), std::string::npos);
    EXPECT_NE(m.head.find("smtp; 550-5.1.1 first line 550 5.1.1 second line Injected:\r\n yes ??"), std::string::npos);
    EXPECT_NE(m.head.find("Remote-MTA: dns; mx.remote.testX-Evil:1\r\n"), std::string::npos);
    for (const char c : m.head) EXPECT_LT(static_cast<unsigned char>(c), 0x80);
    // A diagnostic longer than the cap ends in "...", and the parts stay intact.
    EXPECT_EQ(m.head.find(std::string(200, 'y')), std::string::npos);
    EXPECT_EQ(parts_of(m.head + kOriginal + m.tail, boundary_of(m.head)).size(), 3u);
}

TEST(DsnReport, AddressLiteralAsRemoteMta) {
    DsnReport r = failed_report();
    r.recipients[0].remote_mta = "[2001:db8::1]";
    EXPECT_NE(build_dsn(r).head.find("Remote-MTA: dns; [2001:db8::1]\r\n"), std::string::npos);
}

TEST(DsnReport, OriginalWithoutFinalLineBreakStillClosesTheMultipart) {
    const DsnMessage m = build_dsn(failed_report());
    const std::string message = m.head + "Subject: x\r\n\r\nno line break at the end" + m.tail;
    expect_well_formed(message);
    const auto parts = parts_of(message, boundary_of(m.head));
    ASSERT_EQ(parts.size(), 3u);
    EXPECT_EQ(parts[2].substr(parts[2].size() - 24), "no line break at the end");
}

TEST(DsnReport, CallerMistakesStillGiveAWellFormedReport) {
    DsnReport r = failed_report();
    r.reporting_mta = "";
    r.original_sender = "";
    r.boundary_token = "\r\n\"--";
    r.recipients[0].action = "exploded";
    r.recipients[0].status = "5.1";
    r.recipients[1].status = "9.9.9";
    const DsnMessage m = build_dsn(r);
    expect_well_formed(m.head);
    const std::string_view h = header_section(m.head);
    EXPECT_EQ(header_field(h, "To"), "undisclosed-recipients:;");
    EXPECT_EQ(header_field(h, "From"), "Mail Delivery System <MAILER-DAEMON@localhost>");
    EXPECT_EQ(boundary_of(m.head), "=_ferry_dsn_x");
    EXPECT_NE(m.head.find("Action: failed\r\nStatus: 5.0.0\r\n"), std::string::npos);
    EXPECT_NE(m.head.find("Action: failed\r\nStatus: 5.0.0\r\nDiagnostic-Code: smtp; Host"), std::string::npos);
}

}  // namespace
