//! Facts about the host that guest command lines depend on.
//!
//! Under TCG the guest TSC ticks at the host TSC rate. A microvm guest has no HPET or
//! ACPI PM timer, so Linux can calibrate the TSC only against the PIT, which fails in
//! about 15% of TCG boots and then hangs the boot. Passing `tsc_early_khz=<host kHz>`
//! skips the calibration (see `shared/research/baseline.md` §7), so every Linux boot
//! under TCG should carry it.

use std::sync::OnceLock;

/// Errors from determining the host TSC frequency.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// `/proc/cpuinfo` could not be read.
    #[error("reading /proc/cpuinfo: {0}")]
    CpuInfo(String),
    /// No usable frequency source was found.
    #[error("no TSC frequency found (no CPUID frequency leaf, no `cpu MHz` in /proc/cpuinfo)")]
    NotFound,
    /// `MVM_TSC_KHZ` is set but is not a positive integer.
    #[error("MVM_TSC_KHZ={0:?} is not a positive integer")]
    BadOverride(String),
}

/// Where a TSC frequency came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TscSource {
    /// The `MVM_TSC_KHZ` environment variable.
    Override,
    /// CPUID leaf 0x4000_0010 (hypervisor timing leaf, EAX = TSC kHz).
    HypervisorLeaf,
    /// CPUID leaf 0x15 (crystal clock × TSC/crystal ratio).
    CpuidLeaf15,
    /// `cpu MHz` of the first processor in `/proc/cpuinfo`.
    CpuInfo,
}

/// The host TSC frequency in kHz, for the guest's `tsc_early_khz=`. Cached per process.
pub fn tsc_khz() -> Result<u32, HostError> {
    static CACHE: OnceLock<Result<(u32, TscSource), HostError>> = OnceLock::new();
    CACHE
        .get_or_init(tsc_khz_with_source)
        .clone()
        .map(|(khz, _)| khz)
}

/// The host TSC frequency in kHz and the source it was read from, best source first.
pub fn tsc_khz_with_source() -> Result<(u32, TscSource), HostError> {
    if let Some(v) = std::env::var_os("MVM_TSC_KHZ") {
        let v = v.to_string_lossy().into_owned();
        return match v.trim().parse::<u32>() {
            Ok(khz) if khz > 0 => Ok((khz, TscSource::Override)),
            _ => Err(HostError::BadOverride(v)),
        };
    }
    if let Some(khz) = cpuid::hypervisor_tsc_khz() {
        return Ok((khz, TscSource::HypervisorLeaf));
    }
    if let Some(khz) = cpuid::leaf15_tsc_khz() {
        return Ok((khz, TscSource::CpuidLeaf15));
    }
    let info =
        std::fs::read_to_string("/proc/cpuinfo").map_err(|e| HostError::CpuInfo(e.to_string()))?;
    parse_cpuinfo_khz(&info)
        .map(|khz| (khz, TscSource::CpuInfo))
        .ok_or(HostError::NotFound)
}

/// The first `cpu MHz : 2445.414` line of `/proc/cpuinfo`, in kHz (rounded).
pub fn parse_cpuinfo_khz(cpuinfo: &str) -> Option<u32> {
    let line = cpuinfo.lines().find(|l| l.starts_with("cpu MHz"))?;
    let mhz: f64 = line.split_once(':')?.1.trim().parse().ok()?;
    let khz = (mhz * 1000.0).round();
    (khz >= 1.0 && khz <= f64::from(u32::MAX)).then_some(khz as u32)
}

#[cfg(target_arch = "x86_64")]
mod cpuid {
    use std::arch::x86_64::__cpuid;

    /// CPUID 0x4000_0010 EAX: the TSC frequency in kHz, offered by VMware and by
    /// QEMU/KVM with `-cpu ...,vmware-cpuid-freq=on`.
    pub fn hypervisor_tsc_khz() -> Option<u32> {
        // CPUID.1:ECX bit 31 = running under a hypervisor; only then are the
        // 0x4000_00xx leaves defined.
        if __cpuid(1).ecx & (1 << 31) == 0 || __cpuid(0x4000_0000).eax < 0x4000_0010 {
            return None;
        }
        Some(__cpuid(0x4000_0010).eax).filter(|&khz| khz > 0)
    }

    /// CPUID 0x15: TSC = ECX (crystal Hz) × EBX / EAX, when all three are known.
    pub fn leaf15_tsc_khz() -> Option<u32> {
        if __cpuid(0).eax < 0x15 {
            return None;
        }
        let l = __cpuid(0x15);
        if l.eax == 0 || l.ebx == 0 || l.ecx == 0 {
            return None;
        }
        let hz = u64::from(l.ecx) * u64::from(l.ebx) / u64::from(l.eax);
        u32::try_from(hz / 1000).ok().filter(|&khz| khz > 0)
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod cpuid {
    pub fn hypervisor_tsc_khz() -> Option<u32> {
        None
    }
    pub fn leaf15_tsc_khz() -> Option<u32> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_first_cpu_mhz() {
        let info = "processor\t: 0\nmodel name\t: X\ncpu MHz\t\t: 2445.414\n\nprocessor\t: 1\ncpu MHz\t\t: 1000.000\n";
        assert_eq!(parse_cpuinfo_khz(info), Some(2_445_414));
        assert_eq!(parse_cpuinfo_khz("cpu MHz : 1999.9996\n"), Some(2_000_000));
        assert_eq!(parse_cpuinfo_khz("processor : 0\n"), None);
        assert_eq!(parse_cpuinfo_khz("cpu MHz : fast\n"), None);
        assert_eq!(parse_cpuinfo_khz("cpu MHz : -3\n"), None);
    }

    #[test]
    fn host_value_is_plausible() {
        // Runs on the build host itself: any x86 TSC is between 100 MHz and 10 GHz.
        let khz = tsc_khz().unwrap();
        assert!((100_000..10_000_000).contains(&khz), "{khz}");
    }
}
