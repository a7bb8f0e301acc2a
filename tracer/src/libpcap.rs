//! [`Libpcap`]: libpcap, loaded when `oltrace capture` starts (libloading),
//! not linked.
//!
//! Why loaded and not linked (the `pcap` crate links it): `oltrace` must
//! start on machines without libpcap, where everything but live capture
//! works (import reads files in pure Rust), and olreplay and olanalyze must
//! not depend on it at all. Why libpcap and not an AF_PACKET socket of our
//! own: users pass tcpdump's filter language (`tcp port 5432 and host
//! db1`), which only libpcap compiles to BPF, and libpcap already does the
//! kernel's ring (TPACKET_V3), `-i any` (cooked capture) and drop counts.
//! Only the dozen calls below are bound, with the C declarations of
//! `pcap/pcap.h` (libpcap 1.x, stable ABI).

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};

/// `struct pcap_pkthdr`.
#[repr(C)]
pub struct PktHdr {
    pub ts: libc::timeval,
    pub caplen: u32,
    pub len: u32,
}

/// `struct pcap_stat`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct Stat {
    pub ps_recv: c_uint,
    pub ps_drop: c_uint,
    pub ps_ifdrop: c_uint,
}

/// `struct bpf_program`.
#[repr(C)]
struct BpfProgram {
    bf_len: c_uint,
    bf_insns: *mut c_void,
}

type Pcap = c_void;
const ERRBUF_SIZE: usize = 256;
const PCAP_ERROR_NO_SUCH_DEVICE: c_int = -5;
const PCAP_ERROR_PERM_DENIED: c_int = -8;
const PCAP_NETMASK_UNKNOWN: u32 = 0xffff_ffff;

struct Fns {
    create: unsafe extern "C" fn(*const c_char, *mut c_char) -> *mut Pcap,
    set_snaplen: unsafe extern "C" fn(*mut Pcap, c_int) -> c_int,
    set_promisc: unsafe extern "C" fn(*mut Pcap, c_int) -> c_int,
    set_timeout: unsafe extern "C" fn(*mut Pcap, c_int) -> c_int,
    set_buffer_size: unsafe extern "C" fn(*mut Pcap, c_int) -> c_int,
    activate: unsafe extern "C" fn(*mut Pcap) -> c_int,
    compile: unsafe extern "C" fn(*mut Pcap, *mut BpfProgram, *const c_char, c_int, u32) -> c_int,
    setfilter: unsafe extern "C" fn(*mut Pcap, *mut BpfProgram) -> c_int,
    freecode: unsafe extern "C" fn(*mut BpfProgram),
    next_ex: unsafe extern "C" fn(*mut Pcap, *mut *mut PktHdr, *mut *const u8) -> c_int,
    stats: unsafe extern "C" fn(*mut Pcap, *mut Stat) -> c_int,
    datalink: unsafe extern "C" fn(*mut Pcap) -> c_int,
    geterr: unsafe extern "C" fn(*mut Pcap) -> *const c_char,
    close: unsafe extern "C" fn(*mut Pcap),
    setnonblock: unsafe extern "C" fn(*mut Pcap, c_int, *mut c_char) -> c_int,
    get_selectable_fd: unsafe extern "C" fn(*mut Pcap) -> c_int,
}

/// The library, loaded.
pub struct Libpcap {
    fns: Fns,
    _lib: libloading::Library,
}

/// The names tried, in order (Debian's runtime package ships only the
/// versioned `libpcap.so.0.8`; the unversioned name needs the -dev one).
const NAMES: &[&str] = &["libpcap.so.1", "libpcap.so.0.8", "libpcap.so", "libpcap.dylib"];

impl Libpcap {
    /// Loads libpcap (from `path`, if given: `--libpcap`).
    pub fn load(path: Option<&std::path::Path>) -> anyhow::Result<Libpcap> {
        let mut errors = Vec::new();
        let candidates: Vec<std::ffi::OsString> = match path {
            Some(p) => vec![p.as_os_str().to_owned()],
            None => NAMES.iter().map(|n| n.into()).collect(),
        };
        for name in &candidates {
            // SAFETY: loading libpcap runs no initialisers with preconditions.
            match unsafe { libloading::Library::new(name) } {
                Ok(lib) => return Libpcap::bind(lib).map_err(|e| anyhow::anyhow!("{}: not a usable libpcap ({e})", name.to_string_lossy())),
                Err(e) => errors.push(e.to_string()),
            }
        }
        anyhow::bail!(
            "libpcap could not be loaded ({}): `oltrace capture` needs it at run time; install it (Debian/Ubuntu: apt-get install libpcap0.8; Fedora: dnf install libpcap), or capture with `tcpdump -w FILE` and run `oltrace import FILE`, which needs no libpcap",
            errors.join("; ")
        )
    }

    fn bind(lib: libloading::Library) -> Result<Libpcap, libloading::Error> {
        // SAFETY: each symbol is bound with its C declaration from pcap.h.
        unsafe {
            let fns = Fns {
                create: *lib.get(b"pcap_create\0")?,
                set_snaplen: *lib.get(b"pcap_set_snaplen\0")?,
                set_promisc: *lib.get(b"pcap_set_promisc\0")?,
                set_timeout: *lib.get(b"pcap_set_timeout\0")?,
                set_buffer_size: *lib.get(b"pcap_set_buffer_size\0")?,
                activate: *lib.get(b"pcap_activate\0")?,
                compile: *lib.get(b"pcap_compile\0")?,
                setfilter: *lib.get(b"pcap_setfilter\0")?,
                freecode: *lib.get(b"pcap_freecode\0")?,
                next_ex: *lib.get(b"pcap_next_ex\0")?,
                stats: *lib.get(b"pcap_stats\0")?,
                datalink: *lib.get(b"pcap_datalink\0")?,
                geterr: *lib.get(b"pcap_geterr\0")?,
                close: *lib.get(b"pcap_close\0")?,
                setnonblock: *lib.get(b"pcap_setnonblock\0")?,
                get_selectable_fd: *lib.get(b"pcap_get_selectable_fd\0")?,
            };
            Ok(Libpcap { fns, _lib: lib })
        }
    }
}

/// An open live capture.
pub struct Handle<'l> {
    lib: &'l Libpcap,
    p: *mut Pcap,
    /// To wait on with our own timeout: on Linux, libpcap's read timeout
    /// does not fire while no packet arrives (TPACKET_V3), so the handle is
    /// non-blocking and [`Handle::next_packet`] polls this.
    fd: c_int,
    timeout_ms: c_int,
}

// The handle is used by one thread at a time (moved to the capture thread).
unsafe impl Send for Handle<'_> {}

/// One packet read: its time (ns since the epoch), the bytes held, the
/// length on the wire.
pub enum Next<'a> {
    Packet { ts_unix_ns: u64, data: &'a [u8], orig_len: u32 },
    /// The read timeout passed with nothing.
    Timeout,
}

impl<'l> Handle<'l> {
    /// Opens `interface` with the kernel buffer `buffer_bytes`, a read
    /// timeout of `timeout_ms`, and `filter` (tcpdump's syntax), or says
    /// clearly why not.
    pub fn open(lib: &'l Libpcap, interface: &str, filter: &str, buffer_bytes: usize, timeout_ms: i32) -> anyhow::Result<Handle<'l>> {
        let dev = CString::new(interface).map_err(|_| anyhow::anyhow!("-i: the interface name has a NUL byte"))?;
        let mut errbuf = [0 as c_char; ERRBUF_SIZE];
        // SAFETY: pcap.h's contract: a NUL-terminated name and an errbuf of PCAP_ERRBUF_SIZE.
        let p = unsafe { (lib.fns.create)(dev.as_ptr(), errbuf.as_mut_ptr()) };
        if p.is_null() {
            anyhow::bail!("-i {interface}: {}", unsafe { CStr::from_ptr(errbuf.as_ptr()) }.to_string_lossy());
        }
        let mut h = Handle { lib, p, fd: -1, timeout_ms };
        unsafe {
            (lib.fns.set_snaplen)(p, 262_144);
            (lib.fns.set_promisc)(p, 0);
            (lib.fns.set_timeout)(p, timeout_ms);
            (lib.fns.set_buffer_size)(p, buffer_bytes.min(i32::MAX as usize) as c_int);
        }
        let status = unsafe { (lib.fns.activate)(p) };
        if status < 0 {
            let detail = h.error();
            match status {
                PCAP_ERROR_PERM_DENIED => anyhow::bail!(
                    "-i {interface}: permission denied ({detail}): live capture needs CAP_NET_RAW (and CAP_NET_ADMIN for the kernel buffer): run as root, or `setcap cap_net_raw,cap_net_admin+eip $(command -v oltrace)`; or capture with tcpdump -w and `oltrace import`"
                ),
                PCAP_ERROR_NO_SUCH_DEVICE => anyhow::bail!("-i {interface}: no such interface ({detail}); list them with `ip link` (or use -i any)"),
                _ => anyhow::bail!("-i {interface}: cannot start capturing: {detail}"),
            }
        }
        h.fd = unsafe { (lib.fns.get_selectable_fd)(p) };
        if h.fd < 0 || unsafe { (lib.fns.setnonblock)(p, 1, errbuf.as_mut_ptr()) } != 0 {
            anyhow::bail!("-i {interface}: cannot read without blocking: {}", unsafe { CStr::from_ptr(errbuf.as_ptr()) }.to_string_lossy());
        }
        if !filter.is_empty() {
            let text = CString::new(filter).map_err(|_| anyhow::anyhow!("the filter has a NUL byte"))?;
            let mut program = BpfProgram { bf_len: 0, bf_insns: std::ptr::null_mut() };
            // SAFETY: an activated handle, a NUL-terminated filter, a program to fill.
            if unsafe { (lib.fns.compile)(p, &mut program, text.as_ptr(), 1, PCAP_NETMASK_UNKNOWN) } != 0 {
                anyhow::bail!("bad filter '{filter}': {} (the syntax is tcpdump's, `man pcap-filter`)", h.error());
            }
            let set = unsafe { (lib.fns.setfilter)(p, &mut program) };
            unsafe { (lib.fns.freecode)(&mut program) };
            if set != 0 {
                anyhow::bail!("cannot apply the filter '{filter}': {}", h.error());
            }
        }
        Ok(h)
    }

    /// The link type of the packets (DLT values equal LINKTYPE values for
    /// every type [`capture::frame`] reads).
    pub fn link_type(&self) -> u32 {
        unsafe { (self.lib.fns.datalink)(self.p) as u32 }
    }

    /// The next packet, or `Timeout` when none came within the read timeout.
    pub fn next_packet(&mut self) -> anyhow::Result<Next<'_>> {
        let mut hdr: *mut PktHdr = std::ptr::null_mut();
        let mut data: *const u8 = std::ptr::null();
        // SAFETY: on 1 libpcap fills both pointers, valid until the next call.
        let mut status = unsafe { (self.lib.fns.next_ex)(self.p, &mut hdr, &mut data) };
        if status == 0 {
            let mut pfd = libc::pollfd { fd: self.fd, events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd.
            unsafe { libc::poll(&mut pfd, 1, self.timeout_ms) };
            status = unsafe { (self.lib.fns.next_ex)(self.p, &mut hdr, &mut data) };
        }
        match status {
            1 => {
                let h = unsafe { &*hdr };
                let bytes = unsafe { std::slice::from_raw_parts(data, h.caplen as usize) };
                let ts = h.ts.tv_sec as u64 * 1_000_000_000 + h.ts.tv_usec as u64 * 1000;
                Ok(Next::Packet { ts_unix_ns: ts, data: bytes, orig_len: h.len })
            }
            0 => Ok(Next::Timeout),
            _ => anyhow::bail!("capture stopped: {}", self.error()),
        }
    }

    /// Packets the kernel (and the interface) dropped so far.
    pub fn drops(&self) -> u64 {
        let mut s = Stat::default();
        if unsafe { (self.lib.fns.stats)(self.p, &mut s) } != 0 {
            return 0;
        }
        u64::from(s.ps_drop) + u64::from(s.ps_ifdrop)
    }

    fn error(&self) -> String {
        unsafe { CStr::from_ptr((self.lib.fns.geterr)(self.p)) }.to_string_lossy().into_owned()
    }
}

impl Drop for Handle<'_> {
    fn drop(&mut self) {
        unsafe { (self.lib.fns.close)(self.p) }
    }
}
