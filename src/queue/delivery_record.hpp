// queue/<id>.done: what the queue knows of a message beyond its spool file, so a retry or a restart neither
// delivers twice nor starts the backoff over. Append-only text, one entry a line, fdatasync()ed before the
// attempt is settled:
//
//   alice@example.test                      the recipient is final (delivered, bounced or not to be reported)
//   alice@example.test>bob@example.test     one copy of the recipient (after an alias) is final
//   \t3\talice@example.test\t<reason>       attempt 3 deferred the recipient, with why
//   \tnext\t3\t1795430789                   after attempt 3 the next one is due at this time (Unix seconds)
//   \treleased\t1795430789                 the operator released the held message at this time (`ferry queue
//                                           release`): it is delivered although its addendum says "Hold"
//
// An address never holds a tab or a line break (RFC 5321 4.1.2 allows no control characters in it), and
// reasons are written on one line without tabs. Files written before the "next" line existed still read: they
// only lack the stored next attempt (the message is then due at once, as before). Later lines win, and the
// attempt count is the highest one seen. A "next" line read by an older Ferry looks like a deferral of an
// address named after the attempt number, which it never looks up: a downgrade still reads the file. A "released"
// line has two fields, which an older Ferry skips (it would hold the message again, never deliver it unasked).
#pragma once

#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace ferry::queue {

struct DeliveryRecord {
    std::set<std::string> final;                      // "rcpt" or "rcpt>destination"
    int attempts = 0;                                 // attempts made (highest attempt number recorded)
    std::map<std::string, std::string> last_error;    // deferred recipient -> why its last attempt failed
    std::optional<std::time_t> next_attempt;          // when the next attempt is due, from the last "next" line
    std::optional<std::time_t> released;              // when the operator released the held message (last line)

    bool is_final(const std::string& recipient) const { return final.count(recipient) > 0; }
    bool is_final(const std::string& recipient, const std::string& destination) const {
        return final.count(recipient + ">" + destination) > 0;
    }
};

// What one attempt adds to the record.
struct DeliveryRecordUpdate {
    std::vector<std::string> final;                   // "rcpt" or "rcpt>destination", as in DeliveryRecord
    int attempt = 0;                                  // this attempt's number (1 for the first)
    std::map<std::string, std::string> deferred;      // recipient -> why
    std::optional<std::time_t> next_attempt;          // when deferred: the next attempt's time
    std::optional<std::time_t> released;              // the operator released the held message at this time

    bool empty() const { return final.empty() && deferred.empty() && !next_attempt && !released; }
};

// A reason as the record (and `ferry queue list`) stores it: on one line, CR, LF and TAB turned into spaces.
std::string one_line(std::string_view text);

// Pure: the file's text to a record. Lines it does not understand are skipped (never an error: the record only
// saves work, and the spool file is the message).
DeliveryRecord parse_delivery_record(std::string_view text);

// Pure: the lines an update appends, each ending in "\n". Addresses holding a tab or line break are not
// written (they cannot be in an envelope); tabs and line breaks in reasons become spaces.
std::string format_delivery_record(const DeliveryRecordUpdate& update);

// The record's file beside the spool file.
std::filesystem::path delivery_record_path(const std::filesystem::path& spool_file);

// Reads the record; a missing or unreadable file is an empty record.
DeliveryRecord read_delivery_record(const std::filesystem::path& file);

// Appends the update and makes it durable (fdatasync, and the directory when the file is new).
std::error_code append_delivery_record(const std::filesystem::path& file, const DeliveryRecordUpdate& update);

void remove_delivery_record(const std::filesystem::path& file);

}  // namespace ferry::queue
