// `ferry dkim keygen DOMAIN SELECTOR [--algorithm rsa|ed25519] [--bits N] [--output FILE] --config FILE`:
// makes a DKIM signing key, writes it (PEM, mode 0600) to FILE or to data_dir/dkim/DOMAIN.SELECTOR.pem (where a
// [[dkim.key]] without private_key looks), and prints the TXT record to publish at SELECTOR._domainkey.DOMAIN and
// the configuration lines that use the key. An existing file is never overwritten.
// Exit status: 0 written; 1 the file exists or cannot be written; 2 usage or configuration error.
#pragma once

#include <filesystem>
#include <string>

namespace ferry::cli {

struct KeygenOptions {
    std::string domain, selector;
    std::string algorithm = "rsa";   // rsa | ed25519
    int bits = 2048;                 // RSA only
    std::filesystem::path output;    // empty: data_dir/dkim/<domain>.<selector>.pem
    std::filesystem::path config;
};

int run_dkim_keygen(const KeygenOptions& options);

}  // namespace ferry::cli
