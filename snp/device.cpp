#include "snp/device.h"

#include <fcntl.h>
#include <linux/sev-guest.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "measure/measure.h"
#include "snp/abi.h"

namespace torgw::snp {

const char* to_string(DeviceKind k) {
  switch (k) {
    case DeviceKind::SevGuest: return "sev-guest";
    case DeviceKind::ConfigfsTsm: return "configfs-tsm";
    case DeviceKind::Simulated: return "simulated";
  }
  return "sev-guest";
}

namespace {
struct FieldName {
  std::uint64_t bit;
  const char* name;
};
constexpr FieldName kFieldNames[] = {{key_field::kPolicy, "policy"},      {key_field::kImageId, "image_id"},
                                     {key_field::kFamilyId, "family_id"}, {key_field::kMeasurement, "measurement"},
                                     {key_field::kGuestSvn, "guest_svn"}, {key_field::kTcbVersion, "tcb_version"}};
}  // namespace

Result<std::uint64_t> parse_key_fields(std::string_view text) {
  std::uint64_t bits = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find_first_of(",+", pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view word = text.substr(pos, end - pos);
    const FieldName* f = std::find_if(std::begin(kFieldNames), std::end(kFieldNames),
                                      [&](const FieldName& n) { return word == n.name; });
    if (f == std::end(kFieldNames))
      return make_error("snp.bad_key_fields", "unknown field '" + std::string(word) +
                                                  "' (policy image_id family_id measurement guest_svn tcb_version)");
    if (bits & f->bit) return make_error("snp.bad_key_fields", "field '" + std::string(word) + "' twice");
    bits |= f->bit;
    pos = end + 1;
  }
  return bits;
}

std::string key_fields_to_string(std::uint64_t fields) {
  std::string s;
  for (const auto& f : kFieldNames)
    if (fields & f.bit) s += (s.empty() ? "" : "+") + std::string(f.name);
  return s.empty() ? "none" : s;
}

std::uint32_t root_key_word(const DerivedKeyRequest& req) {
  if (req.root == RootKey::Vmrk) return 1;
  return static_cast<std::uint32_t>(req.key_sel) << 1;
}

std::optional<RootKeyWord> parse_root_key_word(std::uint32_t word) {
  if (word >> 3) return std::nullopt;
  const std::uint32_t sel = (word >> 1) & 3;
  if (sel == 3) return std::nullopt;
  return RootKeyWord{static_cast<RootKey>(word & 1), static_cast<KeySel>(sel)};
}

Error key_status_error(std::uint32_t status, const std::string& why) {
  return make_error(status == kPspStatusInvalidParam ? "snp.device.status.invalid_param" : "snp.device.status",
                    "MSG_KEY_RSP status " + std::to_string(status) + (why.empty() ? "" : " (" + why + ")"));
}

// ---- response decoding ---------------------------------------------------------------

Result<Bytes> parse_report_response(ByteView resp) {
  if (resp.size() < 0x20 + kReportSize) return make_error("snp.device.bad_response", "report response too short");
  const std::uint32_t status = load_le32(resp.data());
  if (status != 0) return make_error("snp.device.status", "MSG_REPORT_RSP status " + std::to_string(status));
  const std::uint32_t size = load_le32(resp.data() + 4);
  if (size != kReportSize)
    return make_error("snp.device.bad_response", "MSG_REPORT_RSP report_size " + std::to_string(size));
  return Bytes(resp.begin() + 0x20, resp.begin() + 0x20 + kReportSize);
}

Result<SecretBytes> parse_key_response(ByteView resp) {
  if (resp.size() < 0x20 + kDerivedKeySize) return make_error("snp.device.bad_response", "key response too short");
  const std::uint32_t status = load_le32(resp.data());
  if (status != 0) return key_status_error(status);
  ByteView key = resp.subspan(0x20, kDerivedKeySize);
  if (std::all_of(key.begin(), key.end(), [](std::uint8_t b) { return b == 0; }))
    return make_error("snp.device.zero_key", "the PSP returned an all-zero derived key");
  return SecretBytes::copy_of(key);
}

// ---- /dev/sev-guest ------------------------------------------------------------------

namespace {

constexpr std::uint8_t kMsgVersion = 1;
constexpr std::size_t kPage = 4096;
constexpr int kBusyRetries = 5;

std::string ioctl_error(const char* what, int err, const snp_guest_request_ioctl& io) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "%s: %s (fw_error 0x%x, vmm_error 0x%x)", what, std::strerror(err), io.fw_error,
                io.vmm_error);
  return buf;
}

// A page-aligned, zeroed buffer (the GHCB needs whole pages for the cert blob).
struct PageBuffer {
  explicit PageBuffer(std::size_t n) : size((n + kPage - 1) / kPage * kPage) {
    data = static_cast<std::uint8_t*>(std::aligned_alloc(kPage, size));
    if (data) std::memset(data, 0, size);
  }
  ~PageBuffer() { std::free(data); }
  PageBuffer(const PageBuffer&) = delete;
  PageBuffer& operator=(const PageBuffer&) = delete;
  std::uint8_t* data = nullptr;
  std::size_t size = 0;
};

}  // namespace

SevGuestDevice::SevGuestDevice(IoctlFn ioctl, std::string describe)
    : ioctl_(std::move(ioctl)), describe_(std::move(describe)) {}

SevGuestDevice::~SevGuestDevice() = default;

Result<std::unique_ptr<SevGuestDevice>> SevGuestDevice::open(const std::string& path) {
  auto fd = std::make_shared<UniqueFd>(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd->valid()) {
    if (errno == ENOENT) return make_error("snp.device.absent", path + " does not exist");
    return make_error("snp.device.open", path + ": " + std::strerror(errno));
  }
  auto dev = std::make_unique<SevGuestDevice>(
      [fd](unsigned long req, snp_guest_request_ioctl* arg) {
        int r;
        do r = ::ioctl(fd->get(), req, arg);
        while (r < 0 && errno == EINTR);
        return r < 0 ? -errno : 0;
      },
      "sev-guest " + path);
  dev->fd_ = fd;
  return dev;
}

Result<ExtendedReport> SevGuestDevice::get_report(const ReportData& data, std::uint32_t vmpl, bool with_certs) {
  snp_report_req req{};
  std::memcpy(req.user_data, data.data(), data.size());
  req.vmpl = vmpl;
  snp_report_resp resp{};
  ExtendedReport out;

  if (!with_certs) {
    for (int attempt = 0;; ++attempt) {
      snp_guest_request_ioctl io{};
      io.msg_version = kMsgVersion;
      io.req_data = reinterpret_cast<std::uintptr_t>(&req);
      io.resp_data = reinterpret_cast<std::uintptr_t>(&resp);
      int r = ioctl_(SNP_GET_REPORT, &io);
      if (r == -EAGAIN && attempt < kBusyRetries) continue;
      if (r < 0) return make_error("snp.device.ioctl", ioctl_error("SNP_GET_REPORT", -r, io));
      if (io.fw_error != 0) return make_error("snp.device.fw_error", ioctl_error("SNP_GET_REPORT", 0, io));
      break;
    }
    TORGW_ASSIGN_OR_RETURN(auto rep, parse_report_response(ByteView(resp.data, sizeof resp.data)));
    out.report = std::move(rep);
    return out;
  }

  // Extended report: the host fills a page-aligned cert buffer. Too small -> EIO with
  // vmm_error INVALID_LEN and certs_len set to the size it needs; grow and retry.
  std::size_t certs_len = 4 * kPage;
  for (int attempt = 0;; ++attempt) {
    PageBuffer certs(certs_len);
    if (!certs.data) return make_error("snp.device.ioctl", "out of memory for the cert buffer");
    snp_ext_report_req ext{};
    ext.data = req;
    ext.certs_address = reinterpret_cast<std::uintptr_t>(certs.data);
    ext.certs_len = static_cast<std::uint32_t>(certs.size);
    snp_guest_request_ioctl io{};
    io.msg_version = kMsgVersion;
    io.req_data = reinterpret_cast<std::uintptr_t>(&ext);
    io.resp_data = reinterpret_cast<std::uintptr_t>(&resp);
    int r = ioctl_(SNP_GET_EXT_REPORT, &io);
    if (r == -EIO && io.vmm_error == SNP_GUEST_VMM_ERR_INVALID_LEN && attempt < 3) {
      if (ext.certs_len <= certs.size || ext.certs_len > kMaxCertTable)
        return make_error("snp.device.certs_too_large",
                          "host asks for a " + std::to_string(ext.certs_len) + "-byte cert buffer");
      certs_len = ext.certs_len;
      continue;
    }
    if (r == -EAGAIN && attempt < kBusyRetries) continue;
    if ((r == -ENOTTY || r == -EOPNOTSUPP) && fallback_) return fallback_->get_report(data, vmpl, with_certs);
    if (r < 0) return make_error("snp.device.ioctl", ioctl_error("SNP_GET_EXT_REPORT", -r, io));
    if (io.fw_error != 0) return make_error("snp.device.fw_error", ioctl_error("SNP_GET_EXT_REPORT", 0, io));
    TORGW_ASSIGN_OR_RETURN(auto rep, parse_report_response(ByteView(resp.data, sizeof resp.data)));
    out.report = std::move(rep);
    // A host without certificates leaves the buffer zeroed: an empty table.
    const bool none = std::all_of(certs.data, certs.data + kCertEntrySize, [](std::uint8_t b) { return b == 0; });
    if (!none) out.cert_table.assign(certs.data, certs.data + certs.size);
    return out;
  }
}

Result<SecretBytes> SevGuestDevice::get_derived_key(const DerivedKeyRequest& r) {
  snp_derived_key_req req{};
  req.root_key_select = root_key_word(r);  // ROOT_KEY_SELECT | KEY_SEL << 1
  req.guest_field_select = r.fields;
  req.vmpl = r.vmpl;
  req.guest_svn = r.guest_svn;
  req.tcb_version = r.tcb_version;
  SecretBytes resp(sizeof(snp_derived_key_resp));  // the key lands here: locked memory
  for (int attempt = 0;; ++attempt) {
    snp_guest_request_ioctl io{};
    io.msg_version = kMsgVersion;
    io.req_data = reinterpret_cast<std::uintptr_t>(&req);
    io.resp_data = reinterpret_cast<std::uintptr_t>(resp.data());
    int rc = ioctl_(SNP_GET_DERIVED_KEY, &io);
    if (rc == -EAGAIN && attempt < kBusyRetries) continue;
    if (rc < 0) return make_error("snp.device.ioctl", ioctl_error("SNP_GET_DERIVED_KEY", -rc, io));
    if (io.fw_error != 0) return make_error("snp.device.fw_error", ioctl_error("SNP_GET_DERIVED_KEY", 0, io));
    break;
  }
  return parse_key_response(resp.view());
}

// ---- configfs-tsm --------------------------------------------------------------------

namespace {

Status write_attr(const std::string& path, ByteView data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return make_error("snp.tsm.io", path + ": " + std::strerror(errno));
  ssize_t w = ::write(fd.get(), data.data(), data.size());
  if (w != static_cast<ssize_t>(data.size()))
    return make_error("snp.tsm.io", path + ": short write (" + std::string(std::strerror(errno)) + ")");
  return {};
}

Result<Bytes> read_attr(const std::string& path, std::size_t max) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return make_error("snp.tsm.io", path + ": " + std::strerror(errno));
  Bytes out;
  std::uint8_t buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return make_error("snp.tsm.io", path + ": " + std::strerror(errno));
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
    if (out.size() > max) return make_error("snp.tsm.io", path + ": larger than " + std::to_string(max));
  }
  return out;
}

Result<std::uint64_t> read_generation(const std::string& dir) {
  TORGW_ASSIGN_OR_RETURN(auto b, read_attr(dir + "/generation", 64));
  std::string_view s = as_chars(b);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size())
    return make_error("snp.tsm.io", dir + "/generation: not a number");
  return v;
}

}  // namespace

Status check_tsm_provider(const std::string& entry_dir) {
  const std::string path = entry_dir + "/provider";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd && errno == ENOENT) return {};
  if (!fd) return make_error("snp.tsm.io", path + ": " + std::strerror(errno));
  char buf[64];
  ssize_t n;
  do n = ::read(fd.get(), buf, sizeof buf);
  while (n < 0 && errno == EINTR);
  if (n < 0 && errno == ENXIO)
    return make_error("snp.device.absent", "configfs-tsm has no provider (no SEV-SNP guest driver bound)");
  if (n < 0) return make_error("snp.tsm.io", path + ": " + std::strerror(errno));
  std::string_view p(buf, static_cast<std::size_t>(n));
  while (!p.empty() && (p.back() == '\n' || p.back() == ' ')) p.remove_suffix(1);
  if (p != "sev_guest")
    return make_error("snp.device.absent", "configfs-tsm provider is '" + std::string(p) + "', not sev_guest");
  return {};
}

Result<std::unique_ptr<TsmDevice>> TsmDevice::open(const std::string& root) {
  struct stat st {};
  if (::stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return make_error("snp.device.absent", root + " does not exist (configfs-tsm not mounted or no TSM)");
  const std::string probe = root + "/torgw-probe-" + std::to_string(::getpid());
  if (::mkdir(probe.c_str(), 0700) != 0)
    return make_error("snp.tsm.io", "mkdir " + probe + ": " + std::strerror(errno));
  Status served = check_tsm_provider(probe);
  ::rmdir(probe.c_str());
  if (!served) return served.error();
  return std::make_unique<TsmDevice>(root);
}

Result<ExtendedReport> read_tsm_entry(const std::string& dir, std::uint64_t generation_before, bool with_certs) {
  ExtendedReport out;
  // configfs-tsm serves TDX and others too: only an SEV-SNP report is one we can parse.
  if (std::filesystem::exists(dir + "/provider")) {
    TORGW_ASSIGN_OR_RETURN(auto prov, read_attr(dir + "/provider", 64));
    std::string_view p = as_chars(prov);
    while (!p.empty() && (p.back() == '\n' || p.back() == ' ')) p.remove_suffix(1);
    if (p != "sev_guest")
      return make_error("snp.tsm.provider", "configfs-tsm provider is '" + std::string(p) + "', not sev_guest");
  }
  TORGW_ASSIGN_OR_RETURN(auto rep, read_attr(dir + "/outblob", 16384));
  if (rep.size() != kReportSize)
    return make_error("snp.device.bad_response", "outblob is " + std::to_string(rep.size()) + " bytes, not 1184");
  out.report = std::move(rep);
  if (with_certs) {
    auto aux = read_attr(dir + "/auxblob", kMaxCertTable);
    if (aux) out.cert_table = std::move(*aux);  // absent/empty: the host supplies no certs
  }
  TORGW_ASSIGN_OR_RETURN(auto gen, read_generation(dir));
  if (gen != generation_before)
    return make_error("snp.tsm.generation", "entry changed while reading (generation " +
                                                std::to_string(generation_before) + " -> " + std::to_string(gen) + ")");
  return out;
}

Result<ExtendedReport> TsmDevice::get_report(const ReportData& data, std::uint32_t vmpl, bool with_certs) {
  static std::atomic<unsigned> counter{0};
  const std::string dir = root_ + "/torgw-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  if (::mkdir(dir.c_str(), 0700) != 0) return make_error("snp.tsm.io", "mkdir " + dir + ": " + std::strerror(errno));
  struct Cleanup {
    std::string d;
    ~Cleanup() { ::rmdir(d.c_str()); }
  } cleanup{dir};
  const std::string priv = std::to_string(vmpl);
  if (std::filesystem::exists(dir + "/privlevel")) TORGW_TRY(write_attr(dir + "/privlevel", as_bytes(priv)));
  TORGW_TRY(write_attr(dir + "/inblob", ByteView(data.data(), data.size())));
  TORGW_ASSIGN_OR_RETURN(auto gen, read_generation(dir));
  return read_tsm_entry(dir, gen, with_certs);
}

Result<SecretBytes> TsmDevice::get_derived_key(const DerivedKeyRequest&) {
  return make_error("snp.device.no_derived_key", "configfs-tsm offers reports only; derived keys need /dev/sev-guest");
}

// ---- selection -----------------------------------------------------------------------

Result<std::array<std::uint8_t, 48>> sim_direct_boot_measurement(const DeviceConfig::SimDirectBoot& db) {
  if (db.kernel.empty()) return make_error("snp.sim.direct_boot", "direct boot needs a kernel file with the OVMF");
  auto ovmf = read_attr(db.ovmf, measure::kMaxOvmfSize);
  if (!ovmf) return make_error("snp.sim.direct_boot", "OVMF " + db.ovmf + ": " + ovmf.error().to_string());
  auto kernel = read_attr(db.kernel, 256u << 20);
  if (!kernel) return make_error("snp.sim.direct_boot", "kernel " + db.kernel + ": " + kernel.error().to_string());
  TORGW_ASSIGN_OR_RETURN(auto sig, measure::vcpu_signature(db.vcpu_type));
  measure::SnpLaunch l;
  l.ovmf = ByteView(ovmf->data(), ovmf->size());
  l.vcpus = db.vcpus;
  l.vcpu_sig = sig;
  l.vmm = measure::VmmType::Qemu;
  l.guest_features = 0x1;
  l.direct_boot = measure::DirectBoot{ByteView(kernel->data(), kernel->size()), std::nullopt, db.append};
  return measure::snp_launch_digest(l);
}

Result<std::unique_ptr<Device>> open_device(const DeviceConfig& cfg) {
  if (cfg.kind == "none") return std::unique_ptr<Device>{};
  if (cfg.kind == "simulated") {
    if (!cfg.open_simulated)
      return make_error("snp.sim.unavailable", "this program is built without the simulated PSP (torgw_snp_simulated)");
    return cfg.open_simulated(cfg);
  }
  if (cfg.kind == "tsm") {
    TORGW_ASSIGN_OR_RETURN(auto t, TsmDevice::open(cfg.tsm_root));
    return std::unique_ptr<Device>(std::move(t));
  }
  if (cfg.kind != "auto" && cfg.kind != "sev-guest")
    return make_error("snp.bad_device_kind", "snp device '" + cfg.kind + "' (auto, sev-guest, tsm, simulated, none)");
  auto sev = SevGuestDevice::open(cfg.sev_guest_path);
  if (sev) {
    if (auto t = TsmDevice::open(cfg.tsm_root); t) (*sev)->set_report_fallback(std::move(*t));
    return std::unique_ptr<Device>(std::move(*sev));
  }
  if (cfg.kind == "sev-guest" || sev.error().reason != "snp.device.absent") return sev.error();
  if (auto t = TsmDevice::open(cfg.tsm_root); t) return std::unique_ptr<Device>(std::move(*t));
  return std::unique_ptr<Device>{};
}

}  // namespace torgw::snp
