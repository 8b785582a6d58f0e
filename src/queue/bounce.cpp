#include "queue/bounce.hpp"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <ctime>
#include <random>

#include "spool/queue_id.hpp"
#include "util/fs.hpp"

namespace ferry::queue {

namespace {

// `length` octets of the spool file from `offset`; nullopt when the file is shorter or unreadable.
std::optional<std::string> read_prefix(int fd, off_t offset, std::size_t length) {
    std::string out(length, '\0');
    std::size_t got = 0;
    while (got < length) {
        const ssize_t n = ::pread(fd, out.data() + got, length - got, offset + static_cast<off_t>(got));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return std::nullopt;
        got += static_cast<std::size_t>(n);
    }
    return out;
}

// The header section with its closing empty line, cut at a line end when it is very long.
std::string header_section(std::string prefix) {
    if (const auto end = prefix.find("\r\n\r\n"); end != std::string::npos) return prefix.substr(0, end + 4);
    if (const auto end = prefix.find("\n\n"); end != std::string::npos) return prefix.substr(0, end + 2);
    const auto last = prefix.rfind('\n');
    prefix.resize(last == std::string::npos ? 0 : last + 1);
    return prefix;
}

std::string random_token() {
    static thread_local std::mt19937_64 random{std::random_device{}()};
    return std::to_string(random());
}

}  // namespace

std::optional<std::string> write_dsn(spool::Spool& spool, const std::string& hostname, const ReportedMessage& m,
                                     std::vector<mime::DsnRecipient> recipients) {
    const spool::Envelope& original = m.envelope;
    mime::DsnReport report;
    report.reporting_mta = hostname;
    report.queue_id = original.queue_id;
    report.envid = original.envid;
    report.arrival = original.arrival;
    report.now = std::time(nullptr);
    report.original_sender = original.sender;
    report.recipients = std::move(recipients);
    report.return_headers_only =
        original.ret == dsn::Ret::hdrs || (original.ret != dsn::Ret::full && m.content_length > kMaxReturnedContent);
    report.utf8 = original.smtputf8;
    report.body_8bit = original.body_8bit;

    spool::Envelope envelope;
    envelope.queue_id = spool::make_queue_id();
    report.boundary_token = envelope.queue_id + random_token();
    envelope.arrival = report.now;
    envelope.client = "127.0.0.1";
    envelope.sender = "";   // RFC 3461 6.2: a DSN goes out with the null reverse-path, so it is never answered
    envelope.recipients = {original.sender};
    envelope.recipient_dsn.resize(1);
    envelope.smtputf8 = original.smtputf8;
    envelope.body_8bit = original.smtputf8 || original.body_8bit;

    auto opened = spool::MessageWriter::open(spool, envelope);
    if (opened.error) {
        spdlog::error("bounce id={} cannot write a DSN to <{}>: {}", original.queue_id, original.sender,
                      opened.error.message());
        return std::nullopt;
    }
    try {
        const mime::DsnMessage dsn = mime::build_dsn(report);
        spool::MessageWriter& writer = *opened.writer;
        std::error_code ec = writer.append(dsn.head);
        if (!ec && !m.prefix.empty()) ec = writer.append(m.prefix);
        if (report.return_headers_only) {
            const auto prefix = read_prefix(m.fd, m.content_offset, std::min(m.content_length, kMaxReturnedHeaders));
            if (!prefix) throw std::runtime_error("cannot read the original message");
            if (!ec) ec = writer.append(header_section(*prefix));
        } else {
            // In blocks, so a large original never sits in memory whole.
            std::size_t done = 0;
            while (!ec && done < m.content_length) {
                const std::size_t n = std::min<std::size_t>(m.content_length - done, 1 << 16);
                const auto block = read_prefix(m.fd, m.content_offset + static_cast<off_t>(done), n);
                if (!block) throw std::runtime_error("cannot read the original message");
                ec = writer.append(*block);
                done += n;
            }
        }
        if (!ec) ec = writer.append(dsn.tail);
        if (!ec) ec = writer.seal();
        if (!ec && ::fdatasync(writer.fd()) != 0) ec = util::last_error();
        if (!ec) ec = util::fsync_dir(spool.queue_dir());
        if (ec) throw std::system_error(ec);
        writer.mark_committed();
    } catch (const std::exception& e) {
        spdlog::error("bounce id={} cannot write a DSN to <{}>: {}", original.queue_id, original.sender, e.what());
        return std::nullopt;
    }
    return envelope.queue_id;
}

}  // namespace ferry::queue
