//! The one table that maps a sampled stack to the component its CPU time is charged to
//! ([`RULES`]), and the classification of folded stacks by it.
//!
//! A stack is matched rule by rule, in table order, against every frame from the leaf up:
//! the first rule that any frame matches wins. So a rule placed earlier claims everything
//! it appears in (malloc called from rustls is the allocator's; SHA-256 called from ECDSA
//! signing is the signature's), and the broad rules at the end (rustls, tlsbench) only get
//! what no specific rule took. Kernel rules look only at kernel frames (perf marks them; the
//! folder annotates them `_[k]`), user rules only at user frames.

use serde::{Deserialize, Serialize};

/// Where a sample's CPU time goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Component {
    /// Signing and verifying: ECDSA, RSA, Ed25519, and the big-number arithmetic of RSA.
    Signatures,
    /// Key exchange: X25519, P-256/P-384 ECDH, ML-KEM (with the SHA-3 inside it).
    KeyExchange,
    /// Hashing, HMAC, HKDF and the TLS 1.2 PRF (the key schedule and transcript hashes).
    Hashing,
    /// Record protection: AES-GCM, ChaCha20-Poly1305.
    Aead,
    /// aws-lc and aws-lc-rs code none of the above took: the RNG (jitter entropy, DRBG),
    /// key parsing, error queues.
    OtherCrypto,
    /// rustls outside the crypto it calls: state machines, message encoding, buffers.
    Rustls,
    /// malloc, free and realloc, in libc or through Rust's allocator or aws-lc's.
    Allocator,
    /// libc's memcpy, memmove, memset and memcmp.
    Memcpy,
    /// Kernel network stack: TCP, IP, sockets, loopback, softirq receive.
    KernelNetwork,
    /// Kernel syscall entry and exit (the sample is in the entry or exit code itself).
    KernelSyscall,
    /// Kernel scheduling and wake-ups: epoll waits, futexes, context switches.
    KernelScheduling,
    /// Other kernel time: memory management, files, interrupts.
    KernelOther,
    /// tlsbench's own code and the I/O crates it drives (mio, httparse), with the std and
    /// libc calls it makes directly.
    Tlsbench,
    /// Anything else, including stacks perf could not symbolize.
    Other,
}

impl Component {
    /// Every component, in the order tables and charts show them.
    pub const ALL: [Component; 14] = [
        Component::Signatures,
        Component::KeyExchange,
        Component::Hashing,
        Component::Aead,
        Component::OtherCrypto,
        Component::Rustls,
        Component::Allocator,
        Component::Memcpy,
        Component::KernelNetwork,
        Component::KernelSyscall,
        Component::KernelScheduling,
        Component::KernelOther,
        Component::Tlsbench,
        Component::Other,
    ];

    /// The name tables and charts show.
    pub fn label(self) -> &'static str {
        match self {
            Component::Signatures => "signatures",
            Component::KeyExchange => "key exchange",
            Component::Hashing => "hashing/HKDF/PRF",
            Component::Aead => "AEAD records",
            Component::OtherCrypto => "other crypto",
            Component::Rustls => "rustls",
            Component::Allocator => "allocator",
            Component::Memcpy => "memcpy/memset",
            Component::KernelNetwork => "kernel: network",
            Component::KernelSyscall => "kernel: syscall entry/exit",
            Component::KernelScheduling => "kernel: scheduling/wake-ups",
            Component::KernelOther => "kernel: other",
            Component::Tlsbench => "tlsbench",
            Component::Other => "other",
        }
    }
}

/// Which frames a rule looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Frames {
    /// Kernel frames anywhere in the stack.
    Kernel,
    /// Only the leaf frame, when it is a kernel frame.
    KernelLeaf,
    /// User-space frames anywhere in the stack.
    User,
}

/// One row of [`RULES`]: a frame matches when one of `patterns` does; a pattern starting
/// with `^` is a prefix of the symbol, any other is a substring of it.
#[derive(Debug)]
pub struct Rule {
    /// Who gets the sample.
    pub component: Component,
    /// Which frames are looked at.
    pub frames: Frames,
    /// Symbol prefixes (`^`) and substrings.
    pub patterns: &'static [&'static str],
}

/// The symbol-to-component table, first match wins (see the module doc). Names were read
/// from `perf script` of this binary: aws-lc's symbols carry a version prefix
/// (`aws_lc_0_47_0_sha512_block_data_order_avx2`) and are matched by substring; some of its
/// assembly is not prefixed (`mulx4x_internal`, `Lcurve25519_x25519_scalarloop`); Rust
/// symbols are demangled paths (`rustls::server::hs::...`).
pub const RULES: &[Rule] = &[
    // Kernel first: a sample with kernel frames is in the kernel, whatever called it.
    Rule {
        // The entry and exit paths themselves, not what the syscall does: only the leaf.
        component: Component::KernelSyscall,
        frames: Frames::KernelLeaf,
        patterns: &[
            "^entry_SYSCALL",
            "^do_syscall_64",
            "^syscall_exit",
            "^syscall_enter",
            "^exit_to_user_mode",
            "^syscall_return",
            "^x64_sys_call",
            "^fpregs_restore_userregs",
            "^switch_fpu_return",
            "^__x64_sys_",
        ],
    },
    Rule {
        // Before the network: a wake-up from TCP receive (sock_def_readable → ep_poll_callback
        // → try_to_wake_up) is a wake-up's cost.
        component: Component::KernelScheduling,
        frames: Frames::Kernel,
        patterns: &[
            "^schedule",
            "^__schedule",
            "^finish_task_switch",
            "^try_to_wake_up",
            "^ttwu_",
            "^wake_up",
            "^__wake_up",
            "^futex_",
            "^__futex",
            "^do_futex",
            "^ep_poll",
            "^do_epoll",
            "^ep_send_events",
            "^ep_item_poll",
            "^pick_next_task",
            "^enqueue_task",
            "^dequeue_task",
            "^update_curr",
            "^psi_",
            "^sched_",
            "^__sched",
            "^hrtimer_",
            "^__hrtimer",
        ],
    },
    Rule {
        component: Component::KernelNetwork,
        frames: Frames::Kernel,
        patterns: &[
            "^tcp_",
            "^__tcp_",
            "^ip_",
            "^__ip_",
            "^ipv4_",
            "^inet_",
            "^__inet",
            "^sock_",
            "^__sock",
            "^sk_",
            "^__sk_",
            "^skb_",
            "^__skb",
            "^kfree_skb",
            "^consume_skb",
            "^alloc_skb",
            "^__alloc_skb",
            "^net_",
            "^__net",
            "^netif_",
            "^__netif",
            "^napi_",
            "^__napi",
            "^dev_",
            "^__dev_",
            "^loopback_",
            "^nf_",
            "^neigh_",
            "^validate_xmit",
            "^process_backlog",
            "^lock_sock",
            "^release_sock",
            "^__sys_accept",
            "^__sys_connect",
            "^__sys_shutdown",
            "^__sys_recv",
            "^__sys_send",
            "^do_accept",
            "^sockfs_",
            "^do_softirq",
            "^handle_softirqs",
            "^__local_bh_enable",
            "^security_socket",
        ],
    },
    Rule {
        component: Component::KernelOther,
        frames: Frames::Kernel,
        patterns: &[""],
    },
    // Leaf libraries next: whoever calls them, time inside them is theirs.
    Rule {
        component: Component::Allocator,
        frames: Frames::User,
        patterns: &[
            "malloc",
            "realloc",
            "calloc",
            "^free",
            "^__free",
            "^cfree",
            "^_int_free",
            "^tcache_",
            "^unlink_chunk",
            "^__rust_alloc",
            "^__rust_dealloc",
            "^__rust_realloc",
            "^__rdl_",
            "^alloc::alloc::",
            "<alloc::alloc::Global",
            "OPENSSL_free",
            "OPENSSL_zalloc",
        ],
    },
    Rule {
        component: Component::Memcpy,
        frames: Frames::User,
        patterns: &[
            "^__memmove",
            "^__memcpy",
            "^__mempcpy",
            "^__memset",
            "^__memcmp",
            "^__bcmp",
            "^memcpy",
            "^memmove",
            "^memset",
            "^memcmp",
            "^bcmp",
            "OPENSSL_cleanse",
        ],
    },
    // Crypto operations by their entry points, so the primitives they share (SHA-256
    // inside ECDSA, SHA-3 inside ML-KEM, the RNG inside key generation) go to the operation.
    Rule {
        component: Component::Signatures,
        frames: Frames::User,
        patterns: &[
            "ECDSA_",
            "ecdsa_",
            "pkey_ec_sign",
            "pkey_ec_verify",
            "EVP_DigestSign",
            "EVP_DigestVerify",
            "EVP_PKEY_sign",
            "EVP_PKEY_verify",
            "RSA_",
            "rsa_",
            "pkey_rsa",
            "ED25519_",
            "ed25519",
            "Ed25519",
            "aws_lc_rs::signature",
            "aws_lc_rs::rsa",
            "aws_lc_rs::ed25519",
            "aws_lc_rs::ec::signature",
            "verify_tls12_signature",
            "verify_tls13_signature",
            "webpki::signed_data",
        ],
    },
    Rule {
        component: Component::KeyExchange,
        frames: Frames::User,
        patterns: &[
            "X25519",
            "x25519",
            "ECDH",
            "ecdh",
            "pkey_ec_derive",
            "EVP_PKEY_derive",
            "EVP_PKEY_keygen",
            "mlkem",
            "MLKEM",
            "ml_kem",
            "KYBER",
            "kyber",
            "aws_lc_rs::agreement",
            "aws_lc_rs::kem",
            "rustls::crypto::aws_lc_rs::kx",
            "rustls::crypto::aws_lc_rs::pq",
        ],
    },
    Rule {
        component: Component::OtherCrypto,
        frames: Frames::User,
        patterns: &["jent_", "CTR_DRBG", "RAND_bytes", "aws_lc_rs::rand"],
    },
    Rule {
        component: Component::Hashing,
        frames: Frames::User,
        patterns: &[
            "HKDF",
            "hkdf",
            "HMAC",
            "hmac",
            "tls1_prf",
            "key_schedule",
            "SHA1",
            "SHA256",
            "SHA384",
            "SHA512",
            "sha1_block",
            "sha256_block",
            "sha512_block",
            "MD5",
            "md5_block",
            "EVP_Digest",
            "aws_lc_rs::digest",
            "rustls::hash_hs",
        ],
    },
    Rule {
        component: Component::Aead,
        frames: Frames::User,
        patterns: &[
            "aes_hw_",
            "aesni_",
            "aes_nohw",
            "vpaes_",
            "AES_",
            "gcm_",
            "GCM",
            "aes_gcm",
            "ChaCha20",
            "chacha20",
            "poly1305",
            "Poly1305",
            "EVP_AEAD",
            "aead_",
            "aws_lc_rs::aead",
        ],
    },
    // Primitives reached without their operation's entry point in the stack (a stack cut
    // short inside assembly without unwind tables): the curve code is key exchange, since the
    // server's ECDSA signing is claimed above whenever its entry point is seen; SHA-3 is
    // ML-KEM's (TLS itself never uses it; the RNG's Keccak is claimed above); big numbers
    // are RSA.
    Rule {
        component: Component::KeyExchange,
        frames: Frames::User,
        patterns: &[
            "SHA3",
            "sha3_",
            "keccak",
            "Keccak",
            "curve25519",
            "fiat_25519",
            "fiat_p256",
            "fiat_p384",
            "ecp_nistz256",
            "p256_",
            "p384_",
            "nistp384",
            "ec_GFp",
            "ec_point",
            "EC_POINT",
            "ec_felem",
            "ec_scalar",
        ],
    },
    Rule {
        component: Component::Signatures,
        frames: Frames::User,
        patterns: &["bn_", "BN_", "mulx4x", "sqrx8x", "mul4x", "rsaz_"],
    },
    Rule {
        component: Component::OtherCrypto,
        frames: Frames::User,
        patterns: &[
            "aws_lc_0_",
            "aws_lc_rs::",
            "aws_lc_sys",
            "OPENSSL_",
            "CRYPTO_",
        ],
    },
    // The rest of rustls (webpki is its certificate verifier).
    Rule {
        component: Component::Rustls,
        frames: Frames::User,
        patterns: &["rustls", "webpki"],
    },
    // Last: anything under tlsbench's own frames (its thread roots are its own functions).
    Rule {
        component: Component::Tlsbench,
        frames: Frames::User,
        patterns: &[
            "server::",
            "loadgen::",
            "common::",
            "runner::",
            "tlsbench::",
            "mio::",
            "httparse::",
        ],
    },
];

/// The suffix the folder gives kernel frames.
const KERNEL_SUFFIX: &str = "_[k]";

fn matches(pattern: &str, symbol: &str) -> bool {
    match pattern.strip_prefix('^') {
        Some(prefix) => symbol.starts_with(prefix),
        None => symbol.contains(pattern),
    }
}

fn rule_matches(rule: &Rule, leaf_first: &[&str]) -> bool {
    fn kernel<'a>(f: &&'a str) -> Option<&'a str> {
        f.strip_suffix(KERNEL_SUFFIX)
    }
    let any = |sym: &str| rule.patterns.iter().any(|p| matches(p, sym));
    match rule.frames {
        Frames::KernelLeaf => leaf_first.first().and_then(kernel).is_some_and(any),
        Frames::Kernel => leaf_first.iter().filter_map(kernel).any(any),
        Frames::User => leaf_first
            .iter()
            .filter(|f| !f.ends_with(KERNEL_SUFFIX))
            .any(|f| any(f)),
    }
}

/// The component of one stack, frames from the root to the leaf as in a folded line
/// (without the thread-name root).
pub fn classify(root_first: &[&str]) -> Component {
    let leaf_first: Vec<&str> = root_first.iter().rev().copied().collect();
    RULES
        .iter()
        .find(|r| rule_matches(r, &leaf_first))
        .map_or(Component::Other, |r| r.component)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folded line's frames (root first, `;`-separated), classified.
    fn of(stack: &str) -> Component {
        classify(&stack.split(';').collect::<Vec<_>>())
    }

    #[test]
    fn every_component_is_reached_by_a_real_looking_stack() {
        let cases = [
            (
                "server::worker::run;rustls::server::hs::ExpectClientHello::handle;aws_lc_rs::signature::EcdsaKeyPair::sign;aws_lc_0_47_0_ECDSA_do_sign;aws_lc_0_47_0_ecp_nistz256_ord_sqr_montx",
                Component::Signatures,
            ),
            (
                "server::worker::run;rustls::server::tls13::emit;aws_lc_rs::agreement::agree;pkey_x25519_derive;aws_lc_0_47_0_X25519;Lcurve25519_x25519_scalarloop",
                Component::KeyExchange,
            ),
            (
                "rustls::tls13::key_schedule::KeySchedule::derive;aws_lc_rs::hkdf::PrkMode::fill;aws_lc_0_47_0_HKDF_expand;aws_lc_0_47_0_HMAC_Final;aws_lc_0_47_0_sha512_block_data_order_avx2",
                Component::Hashing,
            ),
            (
                "rustls::conn::ConnectionCommon::write;aws_lc_rs::aead::LessSafeKey::seal;aws_lc_0_47_0_aes_hw_gcm_encrypt",
                Component::Aead,
            ),
            (
                "rustls::server::hs::start;aws_lc_0_47_0_jent_read_entropy;jent_keccakp_1600",
                Component::OtherCrypto,
            ),
            (
                "server::worker::run;rustls::msgs::handshake::ClientHelloPayload::read",
                Component::Rustls,
            ),
            (
                "server::worker::run;rustls::conn::ConnectionCommon::new;__libc_malloc;_int_malloc",
                Component::Allocator,
            ),
            (
                "server::conn::Conn::read;rustls::conn::read_tls;__memmove_avx512_unaligned_erms",
                Component::Memcpy,
            ),
            (
                "server::worker::run;__GI___writev;entry_SYSCALL_64_after_hwframe_[k];do_syscall_64_[k];tcp_sendmsg_[k];__tcp_transmit_skb_[k]",
                Component::KernelNetwork,
            ),
            (
                "server::worker::run;__libc_recv;entry_SYSCALL_64_after_hwframe_[k]",
                Component::KernelSyscall,
            ),
            (
                "server::worker::run;epoll_wait;entry_SYSCALL_64_after_hwframe_[k];do_epoll_wait_[k];schedule_hrtimeout_range_clock_[k];finish_task_switch.isra.0_[k]",
                Component::KernelScheduling,
            ),
            (
                "server::worker::run;asm_exc_page_fault_[k];handle_mm_fault_[k]",
                Component::KernelOther,
            ),
            (
                "server::worker::run;server::http::parse_request;httparse::Request::parse",
                Component::Tlsbench,
            ),
            ("[unknown];[unknown]", Component::Other),
        ];
        for (stack, want) in cases {
            assert_eq!(of(stack), want, "{stack}");
        }
        let reached: std::collections::BTreeSet<Component> =
            cases.iter().map(|(_, c)| *c).collect();
        assert_eq!(
            reached.len(),
            Component::ALL.len(),
            "a component no stack reaches"
        );
    }

    #[test]
    fn earlier_rules_claim_what_they_call() {
        // SHA-256 under ECDSA signing is the signature's; under HKDF it is hashing.
        assert_eq!(
            of("aws_lc_0_47_0_ECDSA_sign;aws_lc_0_47_0_SHA256_Final;sha256_block_data_order_avx"),
            Component::Signatures
        );
        assert_eq!(
            of("aws_lc_0_47_0_HKDF;sha256_block_data_order_avx"),
            Component::Hashing
        );
        // SHA-3 inside ML-KEM is key exchange; the allocator beats the crypto calling it.
        assert_eq!(
            of("aws_lc_0_47_0_MLKEM768_encap;aws_lc_0_47_0_SHA3_256;keccak_f1600"),
            Component::KeyExchange
        );
        assert_eq!(
            of("aws_lc_0_47_0_ECDSA_sign;aws_lc_0_47_0_OPENSSL_malloc;malloc"),
            Component::Allocator
        );
        // Ed25519 signing uses the curve25519 code: the signature claims it.
        assert_eq!(
            of("aws_lc_0_47_0_ED25519_sign;aws_lc_0_47_0_x25519_ge_scalarmult_base"),
            Component::Signatures
        );
        // A kernel wake-up caused by TCP receive is a wake-up; kernel beats user frames.
        assert_eq!(
            of("rustls::x;tcp_v4_rcv_[k];sock_def_readable_[k];try_to_wake_up_[k]"),
            Component::KernelScheduling
        );
        // Syscall entry only when the leaf is in it.
        assert_eq!(
            of("entry_SYSCALL_64_[k];do_syscall_64_[k];vfs_read_[k]"),
            Component::KernelOther
        );
        // Kernel patterns never match user frames and the reverse.
        assert_eq!(of("server::tcp_accept_loop"), Component::Tlsbench);
        assert_eq!(of("rustls_[k]"), Component::KernelOther);
        // Big numbers without an operation in view are RSA's; bare curve code is key exchange.
        assert_eq!(of("[unknown];mulx4x_internal"), Component::Signatures);
        assert_eq!(
            of("[unknown];ecp_nistz256_point_mulx"),
            Component::KeyExchange
        );
        // SHA-3 cut off from ML-KEM (seen in real stacks) is still ML-KEM's; the RNG's is not.
        assert_eq!(
            of("[unknown];aws_lc_0_47_0_sha3_keccak4_f1600_alt"),
            Component::KeyExchange
        );
        assert_eq!(
            of("aws_lc_0_47_0_jent_read_entropy;jent_keccakp_1600"),
            Component::OtherCrypto
        );
    }

    #[test]
    fn unknown_symbols_are_other() {
        assert_eq!(of("std::thread::start;core::fmt::write"), Component::Other);
        assert_eq!(of(""), Component::Other);
        assert_eq!(classify(&[]), Component::Other);
    }
}
