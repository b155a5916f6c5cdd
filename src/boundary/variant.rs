//! `tVariant`: 1C's value container, with its per-target layout, and conversion to [`Value`].

use std::ffi::{c_int, c_void};
use std::ptr;

use bytes::Bytes;

use super::memory::Memory;
use super::wide::WideText;
use super::wstr::{self, BadUtf16};

/// Variant type codes (TYPEVAR). Kept as plain u16: unknown values must not be UB.
pub mod vt {
    pub const EMPTY: u16 = 0;
    pub const NULL: u16 = 1;
    pub const I2: u16 = 2;
    pub const I4: u16 = 3;
    pub const R4: u16 = 4;
    pub const R8: u16 = 5;
    pub const DATE: u16 = 6;
    pub const TM: u16 = 7;
    pub const PSTR: u16 = 8;
    pub const ERROR: u16 = 10;
    pub const BOOL: u16 = 11;
    pub const I1: u16 = 13;
    pub const UI1: u16 = 14;
    pub const UI2: u16 = 15;
    pub const UI4: u16 = 16;
    pub const I8: u16 = 17;
    pub const UI8: u16 = 18;
    pub const INT: u16 = 19;
    pub const UINT: u16 = 20;
    pub const PWSTR: u16 = 22;
    pub const BLOB: u16 = 23;
}

/// C `struct tm`. glibc/macOS add `tm_gmtoff` and `tm_zone`; MSVC has only the nine ints.
#[repr(C)]
#[derive(Clone, Copy)]
struct Tm {
    sec: c_int,
    min: c_int,
    hour: c_int,
    mday: c_int,
    mon: c_int,
    year: c_int,
    wday: c_int,
    yday: c_int,
    isdst: c_int,
    #[cfg(unix)]
    gmtoff: std::ffi::c_long,
    #[cfg(unix)]
    zone: *const std::ffi::c_char,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct StrVal<T> {
    ptr: *mut T,
    len: u32,
}

/// The union's size is that of its largest member, `struct tm` on Linux and the 36-byte
/// MSVC `struct tm` rounded up to 8 on Windows; `raw` pins it (u64 also gives align 8).
#[cfg(unix)]
const UNION_WORDS: usize = 7;
#[cfg(windows)]
const UNION_WORDS: usize = 5;

#[repr(C)]
#[derive(Clone, Copy)]
union Payload {
    i8: i8,
    i16: i16,
    i32: i32,
    i64: i64,
    u8: u8,
    u16: u16,
    u32: u32,
    u64: u64,
    f32: f32,
    f64: f64,
    bool: bool,
    tm: Tm,
    str: StrVal<u8>,
    wstr: StrVal<u16>,
    raw: [u64; UNION_WORDS],
}

/// 1C's `tVariant`.
#[repr(C)]
pub struct TVariant {
    value: Payload,
    cb_elements: u32,
    vt: u16,
}

#[cfg(all(unix, target_pointer_width = "64"))]
const _: () = assert!(std::mem::size_of::<TVariant>() == 64);
#[cfg(windows)]
const _: () = assert!(std::mem::size_of::<TVariant>() == 48);
#[cfg(windows)]
const _: () = assert!(std::mem::offset_of!(TVariant, vt) == 44);

/// A 1C date: wall-clock time without a zone, as 1C keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Date {
    pub year: i32,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Date {
    /// Days since 1970-01-01 of this date (proleptic Gregorian).
    pub fn days_since_epoch(&self) -> i64 {
        days_from_civil(self.year as i64, self.month as i64, self.day as i64)
    }

    /// Seconds since 1970-01-01 00:00:00 of this wall-clock time.
    pub fn seconds_since_epoch(&self) -> i64 {
        self.days_since_epoch() * 86_400
            + self.hour as i64 * 3600
            + self.minute as i64 * 60
            + self.second as i64
    }

    /// The wall-clock time `secs` seconds after 1970-01-01 00:00:00.
    pub fn from_seconds_since_epoch(secs: i64) -> Date {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        Date {
            year: year as i32,
            month: month as u32,
            day: day as u32,
            hour: (rem / 3600) as u32,
            minute: (rem % 3600 / 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// Whether the fields form a real calendar date (1C never sends others, but a host might).
    pub fn is_valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    let next = if month == 12 {
        days_from_civil(year as i64 + 1, 1, 1)
    } else {
        days_from_civil(year as i64, month as i64 + 1, 1)
    };
    (next - days_from_civil(year as i64, month as i64, 1)) as u32
}

/// Days from 1970-01-01 to y-m-d (the well-known era-based algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

/// OLE automation date: days since 1899-12-30, time of day in the fraction.
const OLE_EPOCH_DAYS: i64 = -25_569;

fn date_from_ole(ole: f64) -> Option<Date> {
    if !ole.is_finite() || ole.abs() > 3.0e6 {
        return None;
    }
    let secs = ((ole * 86_400.0).round() as i64) + OLE_EPOCH_DAYS * 86_400;
    Some(Date::from_seconds_since_epoch(secs))
}

/// A value crossing the boundary, owned by Rust.
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Value {
    /// Неопределено (also what 1C passes for an omitted argument without a default).
    #[default]
    Empty,
    Null,
    Bool(bool),
    Int(i64),
    Double(f64),
    Date(Date),
    Str(String),
    /// Bytes handed to 1C as a String, decoded as UTF-8 straight into host memory (invalid
    /// sequences become U+FFFD): a message body needs no String of its own on the way out.
    Text(Bytes),
    /// Text the component writes straight into 1C's memory (answers of hundreds of megabytes).
    Wide(WideText),
    Blob(Vec<u8>),
    /// A string from 1C that was not valid UTF-16 (unpaired surrogate at `position`).
    BadString {
        position: usize,
    },
    /// A variant type we do not convert (interfaces, arrays, ...), or a malformed one.
    Other(u16),
}

impl From<BadUtf16> for Value {
    fn from(e: BadUtf16) -> Value {
        Value::BadString {
            position: e.position,
        }
    }
}

/// Reads a variant written by the host.
///
/// # Safety
/// `v` must point to a readable tVariant whose string/blob pointers, if any, are valid for their lengths.
pub unsafe fn read(v: *const TVariant) -> Value {
    // SAFETY: caller guarantees `v` is a readable tVariant.
    let v = unsafe { &*v };
    // SAFETY: each arm reads the union member that the host's `vt` says is active.
    unsafe {
        match v.vt {
            vt::EMPTY => Value::Empty,
            vt::NULL => Value::Null,
            vt::BOOL => Value::Bool(v.value.u8 != 0),
            vt::I1 => Value::Int(v.value.i8 as i64),
            vt::I2 => Value::Int(v.value.i16 as i64),
            vt::I4 | vt::ERROR | vt::INT => Value::Int(v.value.i32 as i64),
            vt::UI1 => Value::Int(v.value.u8 as i64),
            vt::UI2 => Value::Int(v.value.u16 as i64),
            vt::UI4 | vt::UINT => Value::Int(v.value.u32 as i64),
            vt::I8 => Value::Int(v.value.i64),
            vt::UI8 => match i64::try_from(v.value.u64) {
                Ok(i) => Value::Int(i),
                Err(_) => Value::Double(v.value.u64 as f64),
            },
            vt::R4 => Value::Double(v.value.f32 as f64),
            vt::R8 => Value::Double(v.value.f64),
            vt::DATE => date_from_ole(v.value.f64).map_or(Value::Other(vt::DATE), Value::Date),
            vt::TM => {
                let tm = v.value.tm;
                let d = Date {
                    year: tm.year.saturating_add(1900),
                    month: (tm.mon as u32).wrapping_add(1),
                    day: tm.mday as u32,
                    hour: tm.hour as u32,
                    minute: tm.min as u32,
                    second: tm.sec as u32,
                };
                if d.is_valid() {
                    Value::Date(d)
                } else {
                    Value::Other(vt::TM)
                }
            }
            vt::PWSTR => {
                let s = v.value.wstr;
                match slice(s.ptr, s.len) {
                    Some(units) => wstr::decode(units).map_or_else(Value::from, Value::Str),
                    None => Value::Other(vt::PWSTR),
                }
            }
            vt::PSTR => {
                let s = v.value.str;
                match slice(s.ptr, s.len) {
                    Some(bytes) => match std::str::from_utf8(bytes) {
                        Ok(text) => Value::Str(text.to_string()),
                        Err(e) => Value::BadString {
                            position: e.valid_up_to(),
                        },
                    },
                    None => Value::Other(vt::PSTR),
                }
            }
            vt::BLOB => {
                let s = v.value.str;
                match slice(s.ptr, s.len) {
                    Some(bytes) => Value::Blob(bytes.to_vec()),
                    None => Value::Other(vt::BLOB),
                }
            }
            other => Value::Other(other),
        }
    }
}

/// `read` into `slot`: a string argument reuses the buffer of the string already there.
///
/// # Safety
/// As for `read`.
pub unsafe fn read_into(v: *const TVariant, slot: &mut Value) {
    // SAFETY: caller guarantees `v` is a readable tVariant.
    let var = unsafe { &*v };
    if let (vt::PWSTR, Value::Str(buf)) = (var.vt, &mut *slot) {
        // SAFETY: the host says the active member is a wide string of `len` units.
        let s = unsafe { var.value.wstr };
        // SAFETY: as above, the pointer is valid for `len` units.
        if let Some(units) = unsafe { slice(s.ptr, s.len) } {
            if let Err(e) = wstr::decode_into(units, buf) {
                *slot = Value::from(e);
            }
            return;
        }
    }
    // SAFETY: as promised by the caller.
    *slot = unsafe { read(v) };
}

/// A slice over host memory; NULL is fine only for an empty value.
///
/// # Safety
/// A non-null `ptr` must be valid for `len` elements.
unsafe fn slice<'a, T>(ptr: *const T, len: u32) -> Option<&'a [T]> {
    if len == 0 {
        return Some(&[]);
    }
    if ptr.is_null() {
        return None;
    }
    // SAFETY: caller guarantees validity for `len` elements; non-null checked above.
    Some(unsafe { std::slice::from_raw_parts(ptr, len as usize) })
}

/// Largest integer a double holds exactly: beyond it 1C would see a different number.
const EXACT_DOUBLE: i64 = 1 << 53;

/// Makes `out` a 1C string from host memory that `alloc` filled; false when it could not.
fn put_wide(
    out: &mut TVariant,
    memory: Option<&Memory>,
    alloc: impl FnOnce(&Memory) -> Option<(ptr::NonNull<u16>, usize)>,
) -> bool {
    let Some(m) = memory else { return false };
    let Some((p, len)) = alloc(m) else {
        return false;
    };
    let Ok(len) = u32::try_from(len) else {
        m.free(p.as_ptr().cast());
        return false;
    };
    out.value.wstr = StrVal {
        ptr: p.as_ptr(),
        len,
    };
    out.vt = vt::PWSTR;
    true
}

/// Writes `value` into a host variant, allocating strings and blobs with the host's manager.
/// Returns false when memory for a string/blob could not be had (the variant is then EMPTY).
///
/// # Safety
/// `v` must point to a writable tVariant.
pub unsafe fn write(v: *mut TVariant, value: &Value, memory: Option<&Memory>) -> bool {
    let mut out = TVariant {
        value: Payload {
            raw: [0; UNION_WORDS],
        },
        cb_elements: 0,
        vt: vt::EMPTY,
    };
    let mut ok = true;
    match value {
        Value::Empty | Value::BadString { .. } | Value::Other(_) => {}
        Value::Null => out.vt = vt::NULL,
        Value::Bool(b) => {
            out.value.bool = *b;
            out.vt = vt::BOOL;
        }
        Value::Int(i) => {
            // 1C documents I4 and R8 for numbers; I8 only where a double would change the value.
            if let Ok(small) = i32::try_from(*i) {
                out.value.i32 = small;
                out.vt = vt::I4;
            } else if i.abs() <= EXACT_DOUBLE {
                out.value.f64 = *i as f64;
                out.vt = vt::R8;
            } else {
                out.value.i64 = *i;
                out.vt = vt::I8;
            }
        }
        Value::Double(d) => {
            out.value.f64 = *d;
            out.vt = vt::R8;
        }
        Value::Date(d) => {
            let days = d.days_since_epoch();
            out.value.tm = Tm {
                sec: d.second as c_int,
                min: d.minute as c_int,
                hour: d.hour as c_int,
                mday: d.day as c_int,
                mon: d.month as c_int - 1,
                year: d.year - 1900,
                // 1970-01-01 was a Thursday (4).
                wday: (days + 4).rem_euclid(7) as c_int,
                yday: (days - days_from_civil(d.year as i64, 1, 1)) as c_int,
                isdst: -1,
                #[cfg(unix)]
                gmtoff: 0,
                #[cfg(unix)]
                zone: ptr::null(),
            };
            out.vt = vt::TM;
        }
        Value::Str(s) => ok = put_wide(&mut out, memory, |m| m.alloc_str(s)),
        Value::Text(b) => ok = put_wide(&mut out, memory, |m| m.alloc_text(b)),
        Value::Wide(t) => ok = put_wide(&mut out, memory, |m| m.alloc_wide(t)),
        Value::Blob(b) => match (memory.and_then(|m| m.alloc_blob(b)), u32::try_from(b.len())) {
            (Some(p), Ok(len)) => {
                out.value.str = StrVal {
                    ptr: p.as_ptr(),
                    len,
                };
                out.vt = vt::BLOB;
            }
            (Some(p), Err(_)) => {
                memory.unwrap().free(p.as_ptr().cast());
                ok = false;
            }
            (None, _) => ok = false,
        },
    }
    // SAFETY: caller guarantees `v` is writable; we overwrite it whole.
    unsafe { ptr::write(v, out) };
    ok
}

/// Frees a string/blob the add-in previously placed in a host variant and empties it.
///
/// # Safety
/// `v` must point to a tVariant whose PWSTR/BLOB payload, if any, came from `memory`.
#[allow(dead_code)] // by-reference parameters are the only user; kept with `write` for symmetry
pub unsafe fn clear(v: *mut TVariant, memory: &Memory) {
    // SAFETY: caller guarantees `v` is a valid variant whose payload came from `memory`.
    unsafe {
        let var = &mut *v;
        if matches!(var.vt, vt::PWSTR | vt::PSTR | vt::BLOB) {
            memory.free(var.value.str.ptr.cast::<c_void>());
        }
        var.vt = vt::EMPTY;
        var.value.raw = [0; UNION_WORDS];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(value: Value) -> Value {
        let mut v = std::mem::MaybeUninit::<TVariant>::uninit();
        // SAFETY: writing a non-string value needs no memory manager; reading back what we wrote.
        unsafe {
            assert!(write(v.as_mut_ptr(), &value, None));
            read(v.as_ptr())
        }
    }

    /// A wide-string variant over `units` (which must outlive its use).
    fn wide(units: &mut [u16]) -> TVariant {
        TVariant {
            value: Payload {
                wstr: StrVal {
                    ptr: units.as_mut_ptr(),
                    len: units.len() as u32,
                },
            },
            cb_elements: 0,
            vt: vt::PWSTR,
        }
    }

    #[test]
    fn reused_argument_buffers_hold_only_the_new_string() {
        let mut slot = Value::Str(String::with_capacity(64));
        let texts = ["a longer ascii text", "Привет", "ok", "𝄞 clef", ""];
        for text in texts {
            let mut units: Vec<u16> = text.encode_utf16().collect();
            let v = wide(&mut units);
            // SAFETY: `v` points at `units`, alive for the call.
            unsafe { read_into(&v, &mut slot) };
            assert_eq!(slot, Value::Str(text.to_string()));
        }
        let mut bad = [u16::from(b'x'), 0xD800, u16::from(b'y')];
        let v = wide(&mut bad);
        // SAFETY: as above.
        unsafe { read_into(&v, &mut slot) };
        assert_eq!(slot, Value::BadString { position: 1 });
        let mut units: Vec<u16> = "next".encode_utf16().collect();
        let v = wide(&mut units);
        // SAFETY: as above.
        unsafe { read_into(&v, &mut slot) };
        assert_eq!(slot, Value::Str("next".into()));
    }

    #[test]
    fn scalars_roundtrip() {
        for value in [
            Value::Empty,
            Value::Null,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(0),
            Value::Int(-5),
            Value::Int(i32::MAX as i64),
            Value::Int(i64::MAX),
            Value::Int(i64::MIN + 1),
            Value::Double(1.5),
        ] {
            assert_eq!(roundtrip(value.clone()), value);
        }
    }

    #[test]
    fn big_integers_go_as_exact_doubles_then_i8() {
        // 1C documents I4 and R8 for numbers: a double while it is exact, I8 beyond.
        assert_eq!(
            roundtrip(Value::Int(1 << 40)),
            Value::Double((1u64 << 40) as f64)
        );
        assert_eq!(
            roundtrip(Value::Int((1 << 53) + 1)),
            Value::Int((1 << 53) + 1)
        );
    }

    #[test]
    fn dates_roundtrip_through_struct_tm() {
        let d = Date {
            year: 2024,
            month: 2,
            day: 29,
            hour: 23,
            minute: 59,
            second: 58,
        };
        assert_eq!(roundtrip(Value::Date(d)), Value::Date(d));
    }

    #[test]
    fn civil_conversions_agree() {
        for days in [-800_000i64, -1, 0, 1, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        let d = Date::from_seconds_since_epoch(1_700_000_000);
        assert_eq!(
            (d.year, d.month, d.day, d.hour, d.minute, d.second),
            (2023, 11, 14, 22, 13, 20)
        );
        assert_eq!(d.seconds_since_epoch(), 1_700_000_000);
    }

    #[test]
    fn ole_dates() {
        assert_eq!(
            date_from_ole(25_569.5),
            Some(Date {
                year: 1970,
                month: 1,
                day: 1,
                hour: 12,
                minute: 0,
                second: 0
            })
        );
        assert_eq!(date_from_ole(f64::NAN), None);
    }

    #[test]
    fn invalid_tm_is_rejected() {
        assert!(!Date {
            year: 2023,
            month: 2,
            day: 29,
            hour: 0,
            minute: 0,
            second: 0
        }
        .is_valid());
    }
}
