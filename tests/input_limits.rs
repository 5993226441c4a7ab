//! Limits on untrusted sizes: a decoder never allocates in proportion to a size its input
//! claims before checking that size against the bytes that back it, nesting is bounded, and
//! rejection is fast.
//!
//! Allocation is checked by running each case in a child process (this test binary re-run
//! with `PM4RT_LIMIT_CHILD` set) whose address space is capped with `RLIMIT_AS`: an
//! allocation beyond the cap aborts the child, and the parent reports it. Inputs are built by
//! hand from the formats' specifications (GGUF: ggml `docs/gguf.md`; ELF64: the System V
//! gABI program header; MessagePack: msgpack `spec.md`).

use std::process::Command;
use std::time::{Duration, Instant};

use pm4rt::gguf::{Gguf, GgufError};
use pm4rt_core::code_object::{msgpack, CodeObject, CodeObjectError};

/// Address-space cap of a child: far below what any of the inputs could make an unbounded
/// decoder ask for, well above what the test harness itself needs.
const CHILD_AS_LIMIT: u64 = 768 << 20;
/// How long a rejection may take.
const FAST: Duration = Duration::from_millis(500);

/// Runs `case` in a child process limited to [`CHILD_AS_LIMIT`] bytes of address space;
/// panics if the child fails (a failed allocation aborts it).
fn in_limited_child(name: &str, case: fn()) {
    if std::env::var_os("PM4RT_LIMIT_CHILD").is_some() {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let maximum = getrlimit(Resource::As).maximum;
        setrlimit(Resource::As, Rlimit { current: Some(CHILD_AS_LIMIT), maximum }).unwrap();
        case();
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--test-threads=1", "--nocapture"])
        .env("PM4RT_LIMIT_CHILD", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} failed under RLIMIT_AS = {CHILD_AS_LIMIT} bytes: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let t0 = Instant::now();
    let r = f();
    assert!(t0.elapsed() < FAST, "{what} took {:?}", t0.elapsed());
    r
}

// ---------------------------------------------------------------------------------------------
// MessagePack
// ---------------------------------------------------------------------------------------------

/// 32 nested map32 headers each claiming 2^32 - 1 entries, then 1 MiB of fixint 0: the
/// innermost map really holds 512 Ki entries; the outer ones hold one each. A reader that
/// reserves "as many entries as bytes remain" at every level asks for about 32 MiB per level,
/// 1 GiB in all.
fn nested_huge_maps() -> Vec<u8> {
    let mut b = Vec::new();
    for _ in 0..msgpack::MAX_DEPTH {
        b.extend([0xdf, 0xff, 0xff, 0xff, 0xff]);
    }
    b.resize(b.len() + (1 << 20), 0x00);
    b
}

fn msgpack_case() {
    let input = nested_huge_maps();
    let r = timed("nested huge maps", || msgpack::decode(&input));
    assert!(matches!(r, Err(msgpack::MsgpackError::Truncated { .. })), "{r:?}");
    let mut arrays = Vec::new();
    for _ in 0..msgpack::MAX_DEPTH {
        arrays.extend([0xdd, 0xff, 0xff, 0xff, 0xff]);
    }
    arrays.resize(arrays.len() + (1 << 20), 0xc0);
    let r = timed("nested huge arrays", || msgpack::decode(&arrays));
    assert!(matches!(r, Err(msgpack::MsgpackError::Truncated { .. })), "{r:?}");
}

#[test]
fn msgpack_claimed_lengths_do_not_reserve_memory() {
    in_limited_child("msgpack_claimed_lengths_do_not_reserve_memory", msgpack_case);
}

#[test]
fn msgpack_nesting_is_bounded() {
    // 100 000 nested fixarrays: a recursive reader without a depth bound overflows the stack.
    let deep = vec![0x91u8; 100_000];
    let r = timed("deep nesting", || msgpack::decode(&deep));
    assert_eq!(r, Err(msgpack::MsgpackError::TooDeep { offset: msgpack::MAX_DEPTH }));
}

// ---------------------------------------------------------------------------------------------
// GGUF
// ---------------------------------------------------------------------------------------------

fn gguf_header(n_tensors: u64, n_kv: u64) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(n_tensors.to_le_bytes());
    b.extend(n_kv.to_le_bytes());
    b
}

fn gguf_string(b: &mut Vec<u8>, s: &str) {
    b.extend((s.len() as u64).to_le_bytes());
    b.extend(s.as_bytes());
}

/// One tensor info `t` with `dims` and ggml type F32 at offset 0.
fn gguf_one_tensor(dims: &[u64]) -> Vec<u8> {
    let mut b = gguf_header(1, 0);
    gguf_string(&mut b, "t");
    b.extend((dims.len() as u32).to_le_bytes());
    for d in dims {
        b.extend(d.to_le_bytes());
    }
    b.extend(0u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b
}

fn gguf_case() {
    // The example: 20 bytes claiming 2^60 tensors (the metadata count is cut).
    let mut tiny = gguf_header(1 << 60, 0);
    tiny.truncate(20);
    let r = timed("20-byte GGUF", || Gguf::parse(&tiny));
    assert!(matches!(r, Err(GgufError::CountTooLarge { what: "tensor count", .. })), "{r:?}");
    // A whole header claiming 2^60 tensors / metadata pairs.
    let h = gguf_header(1 << 60, 0);
    let r = timed("2^60 tensors", || Gguf::parse(&h));
    assert!(matches!(r, Err(GgufError::CountTooLarge { what: "tensor count", .. })), "{r:?}");
    let h = gguf_header(0, 1 << 60);
    let r = timed("2^60 KV", || Gguf::parse(&h));
    assert!(matches!(r, Err(GgufError::CountTooLarge { what: "metadata count", .. })), "{r:?}");
    // A tensor of 2^60 f32 elements in a 57-byte file.
    let f = gguf_one_tensor(&[1 << 60]);
    let r = timed("2^60-element tensor", || Gguf::parse(&f));
    assert!(
        matches!(r, Err(GgufError::DataOutOfBounds { end, .. }) if end == 64 + (1 << 62)),
        "{r:?}"
    );
    // A tensor of 2^20 f32 elements: its bytes are not in the file.
    let f = gguf_one_tensor(&[1 << 20]);
    let r = timed("tensor beyond the file", || Gguf::parse(&f));
    assert!(matches!(r, Err(GgufError::DataOutOfBounds { .. })), "{r:?}");
    // Dimensions whose product overflows u64.
    let f = gguf_one_tensor(&[1 << 32, 1 << 32, 1 << 32]);
    let r = timed("overflowing dims", || Gguf::parse(&f));
    assert!(matches!(r, Err(GgufError::BadTensorInfo { .. })), "{r:?}");
    // A metadata string of 2^60 bytes, and an array of 2^60 u64.
    let mut s = gguf_header(0, 1);
    gguf_string(&mut s, "k");
    s.extend(8u32.to_le_bytes());
    s.extend((1u64 << 60).to_le_bytes());
    let r = timed("2^60-byte string", || Gguf::parse(&s));
    assert!(matches!(r, Err(GgufError::Truncated { what: "string value", .. })), "{r:?}");
    let mut a = gguf_header(0, 1);
    gguf_string(&mut a, "k");
    a.extend(9u32.to_le_bytes());
    a.extend(10u32.to_le_bytes());
    a.extend((1u64 << 60).to_le_bytes());
    let r = timed("2^60-element array", || Gguf::parse(&a));
    assert!(matches!(r, Err(GgufError::CountTooLarge { what: "array length", .. })), "{r:?}");
}

#[test]
fn gguf_claimed_sizes_fail_fast_without_allocating() {
    in_limited_child("gguf_claimed_sizes_fail_fast_without_allocating", gguf_case);
}

#[test]
fn gguf_array_nesting_is_bounded() {
    // Arrays of arrays 1000 deep, each claiming one element.
    let mut b = gguf_header(0, 1);
    gguf_string(&mut b, "k");
    b.extend(9u32.to_le_bytes());
    for _ in 0..1000 {
        b.extend(9u32.to_le_bytes());
        b.extend(1u64.to_le_bytes());
    }
    let r = timed("deep arrays", || Gguf::parse(&b));
    assert!(matches!(r, Err(GgufError::ArrayTooDeep { .. })), "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// Code objects
// ---------------------------------------------------------------------------------------------

/// The committed gfx1201 code object with the `field` (byte offset in a 56-byte ELF64
/// program header) of its first program header of type `p_type` set to `value`.
fn patched_phdr(p_type: u32, field: usize, value: u64) -> Vec<u8> {
    let mut b = pm4rt_kernels::code_object(pm4rt_kernels::Target::Gfx1201).to_vec();
    let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes([b[56], b[57]]) as usize;
    let at = (0..phnum)
        .map(|i| phoff + 56 * i)
        .find(|&h| u32::from_le_bytes(b[h..h + 4].try_into().unwrap()) == p_type)
        .expect("program header of that type");
    b[at + field..at + field + 8].copy_from_slice(&value.to_le_bytes());
    b
}

/// ELF64 program header fields: p_offset 8, p_vaddr 16, p_filesz 32, p_memsz 40.
const P_OFFSET: usize = 8;
const P_FILESZ: usize = 32;
const P_MEMSZ: usize = 40;
const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;

fn code_object_case() {
    for (what, bytes) in [
        ("note of 2^62 bytes", patched_phdr(PT_NOTE, P_FILESZ, 1 << 62)),
        ("note beyond the file", patched_phdr(PT_NOTE, P_OFFSET, 1 << 40)),
        ("segment of 2^62 bytes", patched_phdr(PT_LOAD, P_MEMSZ, 1 << 62)),
        ("segment file size 2^40", patched_phdr(PT_LOAD, P_FILESZ, 1 << 40)),
    ] {
        let r = timed(what, || CodeObject::parse(&bytes));
        assert!(
            matches!(
                r,
                Err(CodeObjectError::BadNote { .. }
                    | CodeObjectError::BadSegment { .. }
                    | CodeObjectError::Truncated { .. })
            ),
            "{what}: {r:?}"
        );
    }
}

#[test]
fn code_object_claimed_sizes_fail_fast_without_allocating() {
    in_limited_child("code_object_claimed_sizes_fail_fast_without_allocating", code_object_case);
}
