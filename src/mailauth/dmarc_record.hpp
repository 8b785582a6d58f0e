// DMARC policy records (RFC 7489 6.3, 6.4): the TXT record at _dmarc.<domain>. Pure: text in, record out.
//
// The record is a tag-list (RFC 6376 3.2, which RFC 7489 6.3 adopts). Decisions where the RFC leaves room:
// - The version tag is read as the 6.4 grammar writes it: "v" *WSP "=" *WSP "DMARC1" (case-sensitive, %x
//   values), followed by *WSP and ';' or the end. Tag names are case-sensitive (RFC 6376 3.2); values from the
//   grammar's quoted strings ("reject", "r", ...) are not (RFC 5234 2.3).
// - "v" must be the first tag; "p" may come anywhere after it (6.3 asks for "that order"; records in the wild
//   put rua= before p=).
// - A tag-spec that is not tag=value syntax, or a value that breaks its tag's grammar, is a syntax error in the
//   remainder of the record: that tag is ignored and its default used (6.3). A tag given twice counts as
//   invalid too, so "p=none; p=reject" has no valid p.
// - Unknown tags are ignored (6.3).
// - p= or sp= invalid (or p= missing): when rua= holds a syntactically valid URI the record acts as
//   "v=DMARC1; p=none" with its other tags kept (6.6.3 step 6.1, `assumed_none` set); otherwise it is no
//   usable record (nullopt; 6.6.3 step 6.2).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mailauth/results.hpp"

namespace ferry::mailauth {

// RFC 7489 6.3 defaults.
inline constexpr int kDmarcDefaultPercent = 100;
inline constexpr std::uint32_t kDmarcDefaultReportInterval = 86400;   // ri=, seconds

struct DmarcRecord {
    Disposition policy = Disposition::none;          // p=
    std::optional<Disposition> subdomain_policy;     // sp=; absent: p= applies to subdomains too
    bool strict_dkim = false;                        // adkim=s
    bool strict_spf = false;                         // aspf=s
    int percent = kDmarcDefaultPercent;              // pct=, 0..100
    std::vector<std::string> rua, ruf;               // the syntactically valid dmarc-uris, as written
    std::string failure_options = "0";               // fo=, as written when valid ("0", "1", "d", "s", "d:s", ...)
    std::string report_format = "afrf";              // rf=
    std::uint32_t report_interval = kDmarcDefaultReportInterval;   // ri=
    bool assumed_none = false;   // p= or sp= was invalid and rua= valid: acting as p=none (6.6.3 step 6.1)
    std::string problem;         // what was wrong when assumed_none, or with an ignored tag ("" when nothing)
};

// Does this TXT record claim to be a DMARC record ("v=DMARC1" first, as above)? Records that do not are
// discarded before anything else (RFC 7489 6.6.3 steps 2 and 4).
bool is_dmarc_record(std::string_view text);

// nullopt when the text is not a DMARC record or has no usable policy (then `error`, if given, says why).
std::optional<DmarcRecord> parse_dmarc_record(std::string_view text, std::string* error = nullptr);

// A dmarc-uri (RFC 7489 6.4): an RFC 3986 URI (scheme ":" and at least one more octet of URI characters,
// percent-encodings well formed, no ',' or '!'), then optionally "!" 1*DIGIT [k/m/g/t] as a size limit.
bool is_dmarc_uri(std::string_view text);

}  // namespace ferry::mailauth
