// ringside-ca: a private CA on the command line.
//   ringside-ca init  --out DIR [--key-type ecdsa-p256|rsa-2048] [--cn NAME] [--lifetime 3650d]
//   ringside-ca intermediate --ca DIR --out DIR [--cn NAME] [--lifetime 1825d] [--key-type ...]
//   ringside-ca issue --ca DIR --san NAME [--san NAME...] [--uri SPIFFE-ID] [--lifetime 7d]
//                     [--key-type ...]
//                     --out DIR [--force]
//   ringside-ca show FILE
// Bad usage prints one line naming the problem and exits 2; other failures exit 1.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "ringside/certs.h"
#include "ringside/tls.h"

namespace po = boost::program_options;
using ringside::tls::KeyType;

namespace {

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

constexpr const char* kUsage =
    "usage: ringside-ca init  --out DIR [--key-type ecdsa-p256|rsa-2048] [--cn NAME] "
    "[--lifetime 3650d] [--force]\n"
    "       ringside-ca intermediate --ca DIR --out DIR [--cn NAME] [--lifetime 1825d]\n"
    "                         [--key-type ecdsa-p256|rsa-2048] [--force]\n"
    "       ringside-ca issue --ca DIR --san NAME [--san NAME...] [--uri SPIFFE-ID...]\n"
    "                         [--lifetime 7d]\n"
    "                         [--key-type ecdsa-p256|rsa-2048] --out DIR [--force]\n"
    "       ringside-ca show FILE\n"
    "durations: a number with ms, s, m, h or d (a bare number is seconds)\n";

struct UsageError {
  std::string what;
};

// "250ms", "30s", "5m", "1h", "7d"; a bare number is seconds. Local to the tool so that
// it does not depend on the proxy's configuration layer.
std::chrono::seconds parse_lifetime(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 12) throw UsageError{"--lifetime: not a duration: '" + text + "'"};
  long long value = std::stoll(text.substr(0, digits));
  std::string unit = text.substr(digits);
  long long ms = 0;
  if (unit == "ms") {
    ms = value;
  } else if (unit == "s" || unit.empty()) {
    ms = value * 1000;
  } else if (unit == "m") {
    ms = value * 60'000;
  } else if (unit == "h") {
    ms = value * 3'600'000;
  } else if (unit == "d") {
    ms = value * 86'400'000;
  } else {
    throw UsageError{"--lifetime: unknown unit '" + unit + "' (use ms, s, m, h or d)"};
  }
  if (ms < 1000) throw UsageError{"--lifetime: must be at least 1s"};
  return std::chrono::seconds(ms / 1000);
}

KeyType parse_key_type(const std::string& text) {
  if (text == "ecdsa-p256") return KeyType::kEcdsaP256;
  if (text == "rsa-2048") return KeyType::kRsa2048;
  throw UsageError{"--key-type: '" + text + "' is not ecdsa-p256 or rsa-2048"};
}

bool read_file(const std::string& path, std::string* out, std::string* why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *why = path + ": " + std::strerror(errno);
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

// Writes path atomically: a temporary file in the same directory with the final mode,
// flushed to disk, then renamed over path. Readers see the old file or the new one.
bool write_file_atomic(const std::string& path, const std::string& content, mode_t mode,
                       std::string* why) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    *why = tmp + ": " + std::strerror(errno);
    return false;
  }
  fchmod(fd, mode);  // regardless of the umask
  size_t off = 0;
  bool ok = true;
  while (off < content.size()) {
    ssize_t n = write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ok = false;
      break;
    }
    off += static_cast<size_t>(n);
  }
  ok = ok && fsync(fd) == 0;
  int saved = errno;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    *why = path + ": " + std::strerror(ok ? errno : saved);
    unlink(tmp.c_str());
    return false;
  }
  return true;
}

bool make_dir(const std::string& dir, std::string* why) {
  if (mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST) {
    struct stat st {};
    if (stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return true;
  }
  *why = dir + ": " + std::strerror(errno == 0 ? ENOTDIR : errno);
  return false;
}

bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

int fail(const std::string& why) {
  std::cerr << "ringside-ca: " << why << "\n";
  return kExitFailure;
}

// Parses the options of one subcommand; --help prints usage and returns false.
bool parse(const po::options_description& desc, const std::vector<std::string>& args,
           po::variables_map* vm, const po::positional_options_description* positional = nullptr) {
  po::command_line_parser parser(args);
  parser.options(desc);
  if (positional) parser.positional(*positional);
  po::store(parser.run(), *vm);
  if (vm->count("help")) {
    std::cout << kUsage << "\n" << desc;
    return false;
  }
  po::notify(*vm);
  return true;
}

// `init` makes a self-signed CA; `intermediate` a subordinate CA under the CA in --ca,
// whose ca.pem holds the new CA and then its parents' chain (the layout `issue` and
// ringside's --ca-cert take). Both write ca.pem and ca.key (0600) in --out.
int cmd_ca(const std::vector<std::string>& args, bool subordinate) {
  std::string parent_dir, out, key_type, cn, lifetime;
  po::options_description desc(subordinate ? "ringside-ca intermediate" : "ringside-ca init");
  desc.add_options()("help", "show this help");
  if (subordinate) {
    desc.add_options()("ca", po::value(&parent_dir)->required(),
                       "directory holding the parent's ca.pem and ca.key");
  }
  desc.add_options()("out", po::value(&out)->required(),
                     subordinate ? "directory for the new ca.pem (chain) and ca.key"
                                 : "directory for ca.pem and ca.key")(
      "key-type", po::value(&key_type)->default_value("ecdsa-p256"), "ecdsa-p256 or rsa-2048")(
      "cn", po::value(&cn)->default_value(subordinate ? "ringside intermediate CA" : "ringside CA"),
      "subject common name")("lifetime",
                             po::value(&lifetime)->default_value(subordinate ? "1825d" : "3650d"),
                             subordinate ? "validity (inside the parent's)" : "validity")(
      "force", "overwrite an existing CA in --out");
  po::variables_map vm;
  if (!parse(desc, args, &vm)) return 0;
  ringside::certs::CaOptions options;
  options.key_type = parse_key_type(key_type);
  options.common_name = cn;
  options.lifetime = parse_lifetime(lifetime);
  if (cn.empty()) throw UsageError{"--cn: must not be empty"};

  std::string why;
  ringside::tls::Identity parent;
  if (subordinate && (!read_file(parent_dir + "/ca.pem", &parent.cert_chain_pem, &why) ||
                      !read_file(parent_dir + "/ca.key", &parent.key_pem, &why))) {
    return fail(why);
  }
  if (!make_dir(out, &why)) return fail(why);
  std::string cert_path = out + "/ca.pem", key_path = out + "/ca.key";
  if (!vm.count("force") && (exists(cert_path) || exists(key_path))) {
    return fail(out + " already holds a CA (use --force to replace it)");
  }
  auto ca = subordinate ? ringside::certs::create_intermediate(parent, options, &why)
                        : ringside::certs::create_ca(options, &why);
  if (!ca) return fail(why);
  if (!write_file_atomic(key_path, ca->key_pem, 0600, &why) ||
      !write_file_atomic(cert_path, ca->cert_chain_pem, 0644, &why)) {
    return fail(why);
  }
  std::cout << "wrote " << cert_path << (subordinate ? " (the new CA, then its parents)" : "")
            << " and " << key_path << "\n";
  return 0;
}

int cmd_issue(const std::vector<std::string>& args) {
  std::string ca_dir, out, key_type, lifetime;
  std::vector<std::string> sans, uris;
  po::options_description desc("ringside-ca issue");
  desc.add_options()("help", "show this help")("ca", po::value(&ca_dir)->required(),
                                               "directory holding ca.pem and ca.key")(
      "san", po::value(&sans)->required()->composing(), "DNS name (repeatable)")(
      "uri", po::value(&uris)->composing(),
      "URI SAN: a SPIFFE ID spiffe://TRUST-DOMAIN/PATH (repeatable)")(
      "lifetime", po::value(&lifetime)->default_value("7d"), "validity")(
      "key-type", po::value(&key_type)->default_value("ecdsa-p256"), "ecdsa-p256 or rsa-2048")(
      "out", po::value(&out)->required(), "directory for cert.pem and key.pem")(
      "force", "overwrite an existing certificate and key in --out");
  po::variables_map vm;
  if (!parse(desc, args, &vm)) return 0;
  ringside::certs::LeafOptions options;
  options.dns_sans = sans;
  options.uri_sans = uris;
  options.key_type = parse_key_type(key_type);
  options.lifetime = parse_lifetime(lifetime);

  // Sidecars watching --out would rotate to the new pair at once: replacing it is asked for.
  const std::string cert_path = out + "/cert.pem", key_path = out + "/key.pem";
  if (!vm.count("force") && (exists(cert_path) || exists(key_path))) {
    return fail(out + " already holds a certificate or key (use --force to replace them)");
  }
  std::string why;
  ringside::tls::Identity ca;
  if (!read_file(ca_dir + "/ca.pem", &ca.cert_chain_pem, &why) ||
      !read_file(ca_dir + "/ca.key", &ca.key_pem, &why)) {
    return fail(why);
  }
  auto leaf = ringside::certs::issue_leaf(ca, options, &why);
  if (!leaf) return fail(why);
  if (!make_dir(out, &why)) return fail(why);
  // The key first: a watcher that sees the new cert.pem finds its key already there.
  if (!write_file_atomic(key_path, leaf->key_pem, 0600, &why) ||
      !write_file_atomic(cert_path, leaf->cert_chain_pem, 0644, &why)) {
    return fail(why);
  }
  std::cout << "wrote " << cert_path << " and " << key_path << "\n";
  return 0;
}

int cmd_show(const std::vector<std::string>& args) {
  std::string file;
  po::options_description desc("ringside-ca show");
  desc.add_options()("help", "show this help")("file", po::value(&file),
                                               "PEM file with one or more certificates");
  po::positional_options_description positional;
  positional.add("file", 1);
  po::variables_map vm;
  if (!parse(desc, args, &vm, &positional)) return 0;
  if (file.empty()) throw UsageError{"missing FILE (a PEM certificate file)"};
  std::string pem, why;
  if (!read_file(file, &pem, &why)) return fail(why);
  auto first = ringside::tls::inspect_certificate(pem, &why);
  if (!first) return fail(file + ": " + why);
  auto all = ringside::tls::inspect_bundle(pem);
  auto iso = [](int64_t t) {
    time_t tt = static_cast<time_t>(t);
    struct tm tm {};
    gmtime_r(&tt, &tm);
    char buf[32];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return std::string(buf);
  };
  for (size_t i = 0; i < all.size(); ++i) {
    const auto& c = all[i];
    if (i > 0) std::cout << "\n";
    std::string sans;
    for (const auto& s : c.dns_sans) sans += (sans.empty() ? "" : ", ") + s;
    std::string uris;
    for (const auto& s : c.uri_sans) uris += (uris.empty() ? "" : ", ") + s;
    std::cout << "subject:    " << c.subject << "\n"
              << "issuer:     " << c.issuer << "\n"
              << "serial:     " << c.serial_hex << "\n"
              << "dns sans:   " << (sans.empty() ? "(none)" : sans) << "\n"
              << "uri sans:   " << (uris.empty() ? "(none)" : uris) << "\n"
              << "key type:   " << ringside::tls::to_string(c.key_type) << "\n"
              << "not before: " << iso(c.not_before) << "\n"
              << "not after:  " << iso(c.not_after) << "\n"
              << "is ca:      " << (c.is_ca ? "yes" : "no") << "\n";
    if (c.is_ca) {
      std::cout << "path len:   " << (c.path_len < 0 ? "none" : std::to_string(c.path_len)) << "\n";
    }
    std::cout << "sha256:     " << c.sha256_hex << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) {
    std::cerr << "ringside-ca: missing command (init, intermediate, issue or show); see --help\n";
    return kExitUsage;
  }
  std::string command = args.front();
  args.erase(args.begin());
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kUsage;
    return 0;
  }
  try {
    if (command == "init") return cmd_ca(args, /*subordinate=*/false);
    if (command == "intermediate") return cmd_ca(args, /*subordinate=*/true);
    if (command == "issue") return cmd_issue(args);
    if (command == "show") return cmd_show(args);
    std::cerr << "ringside-ca: unknown command '" << command
              << "' (init, intermediate, issue or show)\n";
    return kExitUsage;
  } catch (const UsageError& e) {
    std::cerr << "ringside-ca " << command << ": " << e.what << "\n";
  } catch (const po::error& e) {
    std::cerr << "ringside-ca " << command << ": " << e.what() << "\n";
  }
  return kExitUsage;
}
