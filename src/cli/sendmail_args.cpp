#include "cli/sendmail_args.hpp"

namespace ferry::cli {

SendmailArgs parse_sendmail_args(const std::vector<std::string>& args) {
    SendmailArgs out;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        // An option that takes a value, given as "-xVALUE" or "-x VALUE".
        auto value = [&](std::string& into) -> bool {
            if (a.size() > 2) {
                into = a.substr(2);
                return true;
            }
            if (i + 1 >= args.size()) {
                out.error = a + " needs a value";
                return false;
            }
            into = args[++i];
            return true;
        };
        std::string ignored;
        if (a == "--") {
            for (++i; i < args.size(); ++i) out.recipients.push_back(args[i]);
            break;
        }
        if (a == "--config" || a.starts_with("--config=")) {
            if (a.size() > 9) out.config = a.substr(9);
            else if (i + 1 < args.size()) out.config = args[++i];
            else out.error = "--config needs a file";
        } else if (a.size() < 2 || a[0] != '-') {
            out.recipients.push_back(a);
        } else if (a == "-t") {
            out.extract_recipients = true;
        } else if (a == "-i" || a == "-oi") {
            out.ignore_dots = true;
        } else if (a[1] == 'f' || a[1] == 'r') {
            std::string sender;
            if (!value(sender)) break;
            out.sender = sender == "<>" ? "" : sender;
        } else if (a[1] == 'F') {
            if (!value(out.full_name)) break;
        } else if (a[1] == 'B' || a[1] == 'N' || a[1] == 'R' || a[1] == 'V' || a[1] == 'X') {
            if (!value(ignored)) break;
        } else if (a[1] == 'o' || a == "-bm" || a == "-v" || a == "-U" || a == "-G" || a == "-m") {
            // Delivery, error and queue modes (-odi, -oem, -oQ...): Ferry always queues, and bounces by DSN.
        } else if (a[1] == 'b') {
            out.error = a + " is not supported (ferry queue list shows the queue; ferry serve runs the server)";
        } else {
            out.error = "unknown option " + a;
        }
        if (!out.error.empty()) break;
    }
    return out;
}

}  // namespace ferry::cli
