// rspamd's answer to POST /checkv2 (its JSON reply, https://rspamd.com/doc/architecture/protocol.html) read into
// Ferry's ContentVerdict, the way operators expect the actions from Postfix (rspamd's milter proxy) and Haraka:
//   reject          → reject, 550 5.7.1 with messages.smtp_message (default "Spam message rejected")
//   soft reject     → tempfail, 451 4.7.1 with messages.smtp_message (default "Try again later")
//   greylist        → tempfail, 451 4.7.1 "Greylisted, try again later"
//   add header      → delivered as junk, with the X-Spam-Flag/-Score/-Status fields ([rspamd] names)
//   rewrite subject → the same, and Subject: changed to rspamd's "subject"
//   no action       → delivered
//   discard         → 250, delivered to nobody; quarantine → held in the queue (rspamd's own milter does the same)
// and the reply's "milter" block (add_headers in both shapes, remove_headers) and "dkim-signature" (rspamd signed
// the message) as header edits. Pure: the rspamd
// client hands the body of an HTTP 200 in and applies [rspamd] on_error when the result is an error.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "filter/filter_types.hpp"

namespace ferry::filter {

// A reply larger than this is not read (the client stops at it too): rspamd's replies, every symbol with its
// options included, are a few KiB.
inline constexpr std::size_t kMaxRspamdReply = 1024 * 1024;
// Nesting deeper than this is refused by the JSON parser (rspamd's replies are 4 levels deep).
inline constexpr std::size_t kMaxRspamdReplyDepth = 16;
// Header edits taken from the milter block; more are dropped (and counted in the summary).
inline constexpr std::size_t kMaxRspamdHeaderEdits = 64;
// DKIM-Signature fields taken from "dkim-signature" (one per signing domain or key); more are dropped.
inline constexpr std::size_t kMaxRspamdDkimSignatures = 8;
// A field value from rspamd longer than this is dropped: RFC 5322 2.1.1 puts a line at 998 octets, and a folded
// field of 16 KiB is already far beyond what any filter writes.
inline constexpr std::size_t kMaxRspamdHeaderValue = 16 * 1024;
// Text rspamd gives for an SMTP reply is cut to this (RFC 5321 4.5.3.1.5: a reply line is 512 octets with its
// code).
inline constexpr std::size_t kMaxRspamdReplyText = 400;
// Symbols named in the summary, the highest scores first.
inline constexpr std::size_t kRspamdSummarySymbols = 5;

struct RspamdReply {
    std::string error;        // why the reply cannot be used (not JSON, no or unknown action); "" when ok
    ContentVerdict verdict;   // when ok
    bool ok() const { return error.empty(); }
};

// `json`: the body of rspamd's 200 reply. `header_fields`: how many fields the scanned message's header section
// holds (a negative "order" in milter.add_headers counts from its end, as rspamd's milter proxy does).
// `settings`: the names of the X-Spam-* fields.
RspamdReply parse_rspamd_reply(std::string_view json, const config::RspamdSettings& settings,
                               std::size_t header_fields);

}  // namespace ferry::filter
